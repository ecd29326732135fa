// Follows message boundaries in the Postgres frontend (client → server) byte stream, so that the
// Neon proxy can count queries without buffering. Plain Uint8Array code: it also runs inside the
// Workers test runtime, where its contract test lives.

// Requests sent before the startup message, also without a type byte (codes from the protocol docs).
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;

/**
 * Frames may cut messages anywhere, so the counter keeps only the bytes still to skip and at most
 * one partial header (8 bytes in the startup phase, 5 afterwards).
 */
export class FrontendMessageCounter {
  private startupPhase = true;
  private header = new Uint8Array(8);
  private headerLength = 0;
  private skip = 0;
  // Set when the client starts TLS inside the tunnel: the bytes are opaque from then on.
  private encrypted = false;

  /** @param onMessage gets the type byte as a character, or null for an untyped startup-phase message */
  constructor(private readonly onMessage: (type: string | null) => void) {}

  push(chunk: Uint8Array): void {
    let offset = 0;
    while (offset < chunk.length && !this.encrypted) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, chunk.length - offset);
        this.skip -= n;
        offset += n;
        continue;
      }
      // A TLS record (handshake, 0x16) where an untyped message should start: the driver negotiated
      // SSL with Postgres. An untyped message starts with its length, whose first byte is never 0x16.
      if (this.startupPhase && this.headerLength === 0 && chunk[offset] === 0x16) {
        this.encrypted = true;
        return;
      }
      // Startup-phase messages are int32 length + int32 code; later ones are type byte + int32 length.
      const headerSize = this.startupPhase ? 8 : 5;
      const take = Math.min(headerSize - this.headerLength, chunk.length - offset);
      this.header.set(chunk.subarray(offset, offset + take), this.headerLength);
      this.headerLength += take;
      offset += take;
      if (this.headerLength < headerSize) return;
      this.headerLength = 0;

      const view = new DataView(this.header.buffer);
      if (this.startupPhase) {
        const length = view.getInt32(0);
        const code = view.getInt32(4);
        // SSL/GSS negotiation is followed by another untyped message (the real startup message).
        if (code !== SSL_REQUEST && code !== GSSENC_REQUEST) this.startupPhase = false;
        this.skip = Math.max(0, length - 8);
        this.onMessage(null);
      } else {
        this.skip = Math.max(0, view.getInt32(1) - 4);
        this.onMessage(String.fromCharCode(this.header[0]!));
      }
    }
  }
}
