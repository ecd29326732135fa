// Time-ordered UUIDs (version 7, RFC 9562): rows created in one statement sort in creation order,
// which keeps timelines ordered by (created_at, id) even when several events share a timestamp.
let lastMs = 0;
let sequence = 0;

export function uuidv7(): string {
  let ms = Date.now();
  if (ms <= lastMs) {
    sequence = (sequence + 1) & 0xfff;
    if (sequence === 0) lastMs += 1; // 4096 ids in one millisecond: borrow the next one
    ms = lastMs;
  } else {
    lastMs = ms;
    sequence = crypto.getRandomValues(new Uint16Array(1))[0]! & 0x7ff;
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  for (let i = 5; i >= 0; i--) {
    bytes[i] = ms % 256;
    ms = Math.floor(ms / 256);
  }
  bytes[6] = 0x70 | (sequence >> 8);
  bytes[7] = sequence & 0xff;
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
