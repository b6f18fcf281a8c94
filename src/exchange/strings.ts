// Strings kept past the request they were read from.

/**
 * A copy of `s` that shares no memory with the request it was read from.
 * V8 keeps a slice of 13 chars or more as a view of its parent, so a key cut
 * from a header line (even to a few hundred chars) keeps the whole line, up
 * to the 16 KiB head limit, for as long as the key is kept: 100,000 such
 * keys in a bounded table would be 1.6 GB. For tables that outlive requests:
 * copy when storing a key, not when looking one up.
 */
export function ownString(s: string): string {
  return JSON.parse(JSON.stringify(s)) as string;
}
