/**
 * Width and height of a downloaded image, read from its header: enough to prove that the bytes
 * are the image the request asked for. Shared by the smoke tests of both TypeScript clients.
 */
import assert from "node:assert/strict";

/** Width and height from a JPEG's start-of-frame marker. */
export function jpegSize(bytes: Uint8Array): [number, number] {
  assert.deepEqual([...bytes.subarray(0, 3)], [0xff, 0xd8, 0xff], "not a JPEG");
  let at = 2;
  while (at + 9 < bytes.length) {
    assert.equal(bytes[at], 0xff, "broken JPEG marker");
    const marker = bytes[at + 1] ?? 0;
    const length = ((bytes[at + 2] ?? 0) << 8) | (bytes[at + 3] ?? 0);
    if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
      const height = ((bytes[at + 5] ?? 0) << 8) | (bytes[at + 6] ?? 0);
      const width = ((bytes[at + 7] ?? 0) << 8) | (bytes[at + 8] ?? 0);
      return [width, height];
    }
    at += 2 + length;
  }
  throw new Error("no start-of-frame marker in the JPEG");
}

/** Width and height from a PNG's IHDR chunk. */
export function pngSize(bytes: Uint8Array): [number, number] {
  assert.deepEqual([...bytes.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], "not a PNG");
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return [view.getUint32(16), view.getUint32(20)];
}
