// The result of framing a byte stream into HTTP/1.1 messages: what the
// differential tests compare between meshgate's wire codec and llhttp.

/** One message as a parser framed it. */
export interface FramedMessage {
  /** Requests: the method and target as received. */
  method?: string;
  url?: string;
  /** Responses: the status code. */
  status?: number;
  /** 0 or 1 (HTTP/1.0 or HTTP/1.1). */
  versionMinor: number;
  /** Header fields as received, [name, value, name, value, ...], values without surrounding whitespace. */
  headers: string[];
  /** The body bytes after transfer decoding. */
  body: Buffer;
  /** Trailer fields of a chunked body, as headers are. */
  trailers: string[];
  /** The message asked to switch protocols (request: Upgrade + Connection: upgrade; response: 101); framing stops after it. */
  upgrade: boolean;
}

export type FrameResult =
  /** Every byte was framed; `partial` is true when the input ended inside a message (head or body). */
  | { ok: true; messages: FramedMessage[]; partial: boolean }
  /** The parser refused the input after framing `messages`. */
  | { ok: false; messages: FramedMessage[]; error: string };
