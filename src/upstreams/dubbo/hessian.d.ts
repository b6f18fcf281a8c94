// The parts of hessian.js (CommonJS, untyped) that the Dubbo codec uses.
declare module 'hessian.js' {
  /** A Java-typed value: {$class: 'java.lang.Long', $: 1}. */
  export interface JavaValue {
    $class: string;
    $: unknown;
  }

  export class EncoderV2 {
    constructor(options?: { size?: number });
    reset(): this;
    write(value: unknown): this;
    writeString(value: string): this;
    writeInt(value: number): this;
    writeNull(): this;
    /** A view of the internal buffer: copy it before the next reset(). */
    get(): Buffer;
  }

  export class DecoderV2 {
    constructor(buf?: Buffer, classCache?: Map<string, unknown>);
    read(withType?: boolean): unknown;
    readInt(): number;
    readString(): string;
    readBytes(): Buffer;
    position(): number;
    position(n: number): this;
    /** Internals used by the codec's object reader. */
    byteBuffer: { get(): number; get(index: number): number; position(): number };
    classes: Array<{ name: string; fields: string[] }>;
    _readObjectDefinition(): void;
    _addRef(obj: unknown): void;
    throwError(method: string, code: number): never;
  }

  const hessian: {
    EncoderV2: typeof EncoderV2;
    DecoderV2: typeof DecoderV2;
  };
  export default hessian;
}
