// Ad-hoc code signing of a thin 64-bit Mach-O executable, what `codesign --sign -`
// does, without macOS. Apple Silicon refuses to run code without a valid
// signature, and injecting our bundle into Node's binary breaks the signature
// it shipped with. An ad-hoc signature is only a CodeDirectory: SHA-256 of every
// 4 KiB page up to the signature, no certificate. We rewrite the existing
// LC_CODE_SIGNATURE blob (always the file's tail) and leave everything else alone.
// No npm package does this without codesign; rcodesign is Rust and not on the
// registries we can reach. Format: xnu osfmk/kern/cs_blobs.h.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";

const MH_MAGIC_64 = 0xfeedfacf;
const LC_SEGMENT_64 = 0x19;
const LC_CODE_SIGNATURE = 0x1d;
const MH_EXECUTE = 0x2;

const CSMAGIC_EMBEDDED_SIGNATURE = 0xfade0cc0;
const CSMAGIC_CODEDIRECTORY = 0xfade0c02;
const CSMAGIC_REQUIREMENTS = 0xfade0c01;
const CSMAGIC_BLOBWRAPPER = 0xfade0b01;
const CSSLOT_CODEDIRECTORY = 0;
const CSSLOT_REQUIREMENTS = 2;
const CSSLOT_SIGNATURESLOT = 0x10000;
const CS_ADHOC = 0x2;
const CS_EXECSEG_MAIN_BINARY = 0x1;
const CS_HASHTYPE_SHA256 = 2;
const CD_VERSION = 0x20400;
const CD_HEADER_SIZE = 88;
const PAGE_SHIFT = 12;
const PAGE_SIZE = 1 << PAGE_SHIFT;
const HASH_SIZE = 32;
/** Slots before the code hashes: -1 Info.plist (none), -2 requirements. */
const SPECIAL_SLOTS = 2;

const sha256 = (data) => createHash("sha256").update(data).digest();

function parse(buffer) {
  if (buffer.readUInt32LE(0) !== MH_MAGIC_64) throw new Error("not a thin 64-bit little-endian Mach-O file");
  const filetype = buffer.readUInt32LE(12);
  const ncmds = buffer.readUInt32LE(16);
  const sizeofcmds = buffer.readUInt32LE(20);
  let offset = 32;
  const segments = [];
  let signature;
  let firstSectionOffset = Infinity;
  for (let i = 0; i < ncmds; i += 1) {
    const cmd = buffer.readUInt32LE(offset);
    const size = buffer.readUInt32LE(offset + 4);
    if (cmd === LC_SEGMENT_64) {
      segments.push({
        at: offset,
        name: buffer.toString("latin1", offset + 8, offset + 24).replace(/\0.*$/s, ""),
        vmsize: buffer.readBigUInt64LE(offset + 32),
        fileoff: Number(buffer.readBigUInt64LE(offset + 40)),
        filesize: Number(buffer.readBigUInt64LE(offset + 48)),
      });
      const nsects = buffer.readUInt32LE(offset + 64);
      for (let s = 0; s < nsects; s += 1) {
        const sectionOffset = buffer.readUInt32LE(offset + 72 + s * 80 + 48);
        if (sectionOffset > 0) firstSectionOffset = Math.min(firstSectionOffset, sectionOffset);
      }
    } else if (cmd === LC_CODE_SIGNATURE) {
      signature = { at: offset, dataoff: buffer.readUInt32LE(offset + 8), datasize: buffer.readUInt32LE(offset + 12) };
    }
    offset += size;
  }
  return { filetype, ncmds, sizeofcmds, segments, signature, firstSectionOffset };
}

function codeDirectory(buffer, codeLimit, identifier, requirementsHash, text, executable) {
  const ident = Buffer.from(`${identifier}\0`, "utf8");
  const nCodeSlots = Math.ceil(codeLimit / PAGE_SIZE);
  const hashOffset = CD_HEADER_SIZE + ident.length + SPECIAL_SLOTS * HASH_SIZE;
  const length = hashOffset + nCodeSlots * HASH_SIZE;
  const cd = Buffer.alloc(length);
  cd.writeUInt32BE(CSMAGIC_CODEDIRECTORY, 0);
  cd.writeUInt32BE(length, 4);
  cd.writeUInt32BE(CD_VERSION, 8);
  cd.writeUInt32BE(CS_ADHOC, 12);
  cd.writeUInt32BE(hashOffset, 16);
  cd.writeUInt32BE(CD_HEADER_SIZE, 20); // identOffset
  cd.writeUInt32BE(SPECIAL_SLOTS, 24);
  cd.writeUInt32BE(nCodeSlots, 28);
  cd.writeUInt32BE(codeLimit, 32);
  cd.writeUInt8(HASH_SIZE, 36);
  cd.writeUInt8(CS_HASHTYPE_SHA256, 37);
  cd.writeUInt8(0, 38); // platform
  cd.writeUInt8(PAGE_SHIFT, 39);
  // spare2, scatterOffset, teamOffset, spare3, codeLimit64 stay zero.
  cd.writeBigUInt64BE(BigInt(text.fileoff), 64); // execSegBase
  cd.writeBigUInt64BE(BigInt(text.filesize), 72); // execSegLimit
  cd.writeBigUInt64BE(BigInt(executable ? CS_EXECSEG_MAIN_BINARY : 0), 80);
  ident.copy(cd, CD_HEADER_SIZE);
  requirementsHash.copy(cd, hashOffset - HASH_SIZE * 2); // slot -2; slot -1 stays zero
  for (let page = 0; page < nCodeSlots; page += 1) {
    const start = page * PAGE_SIZE;
    sha256(buffer.subarray(start, Math.min(start + PAGE_SIZE, codeLimit))).copy(cd, hashOffset + page * HASH_SIZE);
  }
  return cd;
}

function signatureSize(codeLimit, identifier) {
  const cd = CD_HEADER_SIZE + Buffer.byteLength(identifier) + 1 + (SPECIAL_SLOTS + Math.ceil(codeLimit / PAGE_SIZE)) * HASH_SIZE;
  return 12 + 3 * 8 + cd + 12 + 8;
}

/**
 * Signs `path` ad hoc in place. An existing signature (the tail of __LINKEDIT) is replaced; without one
 * (postject's LIEF drops it when it adds the NODE_SEA segment) an LC_CODE_SIGNATURE is added in the
 * header's spare room and the signature appended to __LINKEDIT.
 */
export function adhocSignMachO(path, identifier) {
  let buffer = readFileSync(path);
  const parsed = parse(buffer);
  const { filetype, segments } = parsed;
  const linkedit = segments.find((s) => s.name === "__LINKEDIT");
  const text = segments.find((s) => s.name === "__TEXT");
  if (!linkedit || !text) throw new Error(`${path} lacks __TEXT or __LINKEDIT`);
  if (linkedit.fileoff + linkedit.filesize !== buffer.length) throw new Error(`${path}: __LINKEDIT does not end the file; refusing to guess the layout`);
  let signature = parsed.signature;
  if (!signature) {
    const at = 32 + parsed.sizeofcmds;
    if (at + 16 > parsed.firstSectionOffset || buffer.subarray(at, at + 16).some((b) => b !== 0)) {
      throw new Error(`${path}: no room in the Mach-O header for LC_CODE_SIGNATURE`);
    }
    buffer.writeUInt32LE(LC_CODE_SIGNATURE, at);
    buffer.writeUInt32LE(16, at + 4);
    buffer.writeUInt32LE(parsed.ncmds + 1, 16);
    buffer.writeUInt32LE(parsed.sizeofcmds + 16, 20);
    signature = { at, dataoff: Math.ceil(buffer.length / 16) * 16, datasize: 0 };
    buffer.writeUInt32LE(signature.dataoff, at + 8);
  } else if (signature.dataoff + signature.datasize > buffer.length) {
    throw new Error(`${path}: the code signature runs past the end of the file`);
  }
  const codeLimit = signature.dataoff;
  // Pad like codesign does, so the next signing of a slightly larger file fits the same layout.
  const datasize = Math.ceil((signatureSize(codeLimit, identifier) + 1024) / 16) * 16;
  const end = codeLimit + datasize;
  const resized = Buffer.alloc(end);
  buffer.copy(resized, 0, 0, Math.min(codeLimit, buffer.length));
  buffer = resized;
  buffer.writeUInt32LE(datasize, signature.at + 12);
  const linkeditFilesize = end - linkedit.fileoff;
  buffer.writeBigUInt64LE(BigInt(linkeditFilesize), linkedit.at + 48);
  const page16k = 0x4000n;
  const vmsize = ((BigInt(linkeditFilesize) + page16k - 1n) / page16k) * page16k;
  if (vmsize > linkedit.vmsize) buffer.writeBigUInt64LE(vmsize, linkedit.at + 32);

  const requirements = Buffer.alloc(12);
  requirements.writeUInt32BE(CSMAGIC_REQUIREMENTS, 0);
  requirements.writeUInt32BE(12, 4);
  requirements.writeUInt32BE(0, 8);
  const cms = Buffer.alloc(8);
  cms.writeUInt32BE(CSMAGIC_BLOBWRAPPER, 0);
  cms.writeUInt32BE(8, 4);
  // The header changes above are inside page 0, so hash after making them.
  const cd = codeDirectory(buffer, codeLimit, identifier, sha256(requirements), text, filetype === MH_EXECUTE);

  const blobs = [
    [CSSLOT_CODEDIRECTORY, cd],
    [CSSLOT_REQUIREMENTS, requirements],
    [CSSLOT_SIGNATURESLOT, cms],
  ];
  const superHeader = 12 + blobs.length * 8;
  const superLength = superHeader + blobs.reduce((n, [, b]) => n + b.length, 0);
  const superBlob = Buffer.alloc(superLength);
  superBlob.writeUInt32BE(CSMAGIC_EMBEDDED_SIGNATURE, 0);
  superBlob.writeUInt32BE(superLength, 4);
  superBlob.writeUInt32BE(blobs.length, 8);
  let at = superHeader;
  blobs.forEach(([slot, blob], index) => {
    superBlob.writeUInt32BE(slot, 12 + index * 8);
    superBlob.writeUInt32BE(at, 16 + index * 8);
    blob.copy(superBlob, at);
    at += blob.length;
  });
  superBlob.copy(buffer, codeLimit);
  writeFileSync(path, buffer);
}

/**
 * Checks what the kernel checks of an ad-hoc signature: the CodeDirectory covers the file up to the signature,
 * every page hash matches, and the requirements slot hash matches. Throws on any mismatch.
 */
export function verifyMachOSignature(buffer) {
  const { signature, segments } = parse(buffer);
  if (!signature) throw new Error("no LC_CODE_SIGNATURE");
  const linkedit = segments.find((s) => s.name === "__LINKEDIT");
  if (!linkedit || linkedit.fileoff + linkedit.filesize < signature.dataoff + signature.datasize) throw new Error("signature lies outside __LINKEDIT");
  const sig = buffer.subarray(signature.dataoff, signature.dataoff + signature.datasize);
  if (sig.readUInt32BE(0) !== CSMAGIC_EMBEDDED_SIGNATURE) throw new Error("no embedded signature superblob");
  const count = sig.readUInt32BE(8);
  const slots = new Map();
  for (let i = 0; i < count; i += 1) {
    const offset = sig.readUInt32BE(16 + i * 8);
    slots.set(sig.readUInt32BE(12 + i * 8), sig.subarray(offset, offset + sig.readUInt32BE(offset + 4)));
  }
  const cd = slots.get(CSSLOT_CODEDIRECTORY);
  if (!cd || cd.readUInt32BE(0) !== CSMAGIC_CODEDIRECTORY) throw new Error("no CodeDirectory");
  const hashOffset = cd.readUInt32BE(16);
  const nSpecial = cd.readUInt32BE(24);
  const nCode = cd.readUInt32BE(28);
  const codeLimit = cd.readUInt32BE(32);
  const hashSize = cd.readUInt8(36);
  const pageSize = 1 << cd.readUInt8(39);
  if (cd.readUInt8(37) !== CS_HASHTYPE_SHA256 || hashSize !== HASH_SIZE) throw new Error("CodeDirectory is not SHA-256");
  if (codeLimit !== signature.dataoff) throw new Error(`CodeDirectory covers ${codeLimit} bytes, the signature starts at ${signature.dataoff}`);
  if (nCode !== Math.ceil(codeLimit / pageSize)) throw new Error("wrong number of code slots");
  for (let page = 0; page < nCode; page += 1) {
    const start = page * pageSize;
    const expected = cd.subarray(hashOffset + page * hashSize, hashOffset + (page + 1) * hashSize);
    if (!sha256(buffer.subarray(start, Math.min(start + pageSize, codeLimit))).equals(expected)) throw new Error(`page ${page} does not match its hash`);
  }
  const requirements = slots.get(CSSLOT_REQUIREMENTS);
  if (nSpecial >= 2 && requirements) {
    const expected = cd.subarray(hashOffset - 2 * hashSize, hashOffset - hashSize);
    if (!sha256(requirements).equals(expected)) throw new Error("requirements hash does not match");
  }
  return { codeLimit, pages: nCode, flags: cd.readUInt32BE(12) };
}
