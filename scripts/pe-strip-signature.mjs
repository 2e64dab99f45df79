// Removes the Authenticode signature from a PE file. Injecting our bundle into
// node.exe invalidates the signature Node's release carries; a broken signature
// is worse than none (it reads as tampering), and we have no certificate to
// re-sign with. Small enough to hand-write: one data-directory entry and a
// truncation (the certificate table is, by the PE spec, the file's tail).
import { closeSync, ftruncateSync, fstatSync, openSync, readSync, writeSync } from "node:fs";

const SECURITY_DIRECTORY = 4;

/** @returns {boolean} whether a signature was removed */
export function stripAuthenticode(path) {
  const fd = openSync(path, "r+");
  try {
    const head = Buffer.alloc(4096);
    readSync(fd, head, 0, head.length, 0);
    if (head.toString("latin1", 0, 2) !== "MZ") throw new Error(`${path} is not a PE file`);
    const pe = head.readUInt32LE(0x3c);
    if (head.toString("latin1", pe, pe + 4) !== "PE\0\0") throw new Error(`${path} has no PE header`);
    const optional = pe + 24;
    const magic = head.readUInt16LE(optional);
    const directories = optional + (magic === 0x20b ? 112 : 96);
    const count = head.readUInt32LE(optional + (magic === 0x20b ? 108 : 92));
    if (count <= SECURITY_DIRECTORY) return false;
    const entry = directories + SECURITY_DIRECTORY * 8;
    const offset = head.readUInt32LE(entry);
    const size = head.readUInt32LE(entry + 4);
    if (offset === 0 || size === 0) return false;
    const fileSize = fstatSync(fd).size;
    if (offset + size !== fileSize) throw new Error(`${path}: the certificate table is not at the end of the file`);
    writeSync(fd, Buffer.alloc(8), 0, 8, entry);
    ftruncateSync(fd, offset);
    return true;
  } finally {
    closeSync(fd);
  }
}

/** The security directory entry (offset, size), for tests. */
export function authenticodeEntry(buffer) {
  const pe = buffer.readUInt32LE(0x3c);
  const optional = pe + 24;
  const magic = buffer.readUInt16LE(optional);
  const entry = optional + (magic === 0x20b ? 112 : 96) + SECURITY_DIRECTORY * 8;
  return { offset: buffer.readUInt32LE(entry), size: buffer.readUInt32LE(entry + 4) };
}
