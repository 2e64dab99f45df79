// The pieces of scripts/build-runtime.mjs that can be checked without building
// 100 MiB executables: the ad-hoc Mach-O signer (darwin artifacts, which
// cannot run here), the Authenticode stripper (windows-x64), the signed
// message, and what a runtime run from source reports about itself.
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runtimeSignatureMessage as protocolMessage } from "../../protocol/runtime-release";
import { describeBuild, RUNTIME_EXECUTABLE, RUNTIME_PLATFORM, RUNTIME_VERSION, runtimePlatformOf, UPDATE_PUBLIC_KEY } from "../../runtime/src/version";
import { runtimeSignatureMessage as buildMessage } from "../../scripts/build-runtime.mjs";
import { adhocSignMachO, verifyMachOSignature } from "../../scripts/macho-adhoc-sign.mjs";
import { authenticodeEntry, stripAuthenticode } from "../../scripts/pe-strip-signature.mjs";

const dir = mkdtempSync(join(tmpdir(), "caisey-build-test-"));

/** A minimal thin arm64 MH_EXECUTE: __TEXT (header + code) then __LINKEDIT, the layout ld produces. */
function machO({ withSignatureCommand }: { withSignatureCommand: boolean }): Buffer {
  const textSize = 0x8000;
  const linkeditSize = 0x1234;
  const buffer = Buffer.alloc(textSize + linkeditSize);
  const segment = (at: number, name: string, vmaddr: number, vmsize: number, fileoff: number, filesize: number, nsects: number) => {
    buffer.writeUInt32LE(0x19, at);
    buffer.writeUInt32LE(72 + nsects * 80, at + 4);
    buffer.write(name, at + 8, "latin1");
    buffer.writeBigUInt64LE(BigInt(vmaddr), at + 24);
    buffer.writeBigUInt64LE(BigInt(vmsize), at + 32);
    buffer.writeBigUInt64LE(BigInt(fileoff), at + 40);
    buffer.writeBigUInt64LE(BigInt(filesize), at + 48);
    buffer.writeUInt32LE(nsects, at + 64);
    return at + 72 + nsects * 80;
  };
  let at = 32;
  const textAt = at;
  at = segment(at, "__TEXT", 0x100000000, textSize, 0, textSize, 1);
  buffer.write("__text", textAt + 72, "latin1");
  buffer.writeUInt32LE(0x1000, textAt + 72 + 48); // section file offset: the code starts at 4 KiB
  at = segment(at, "__LINKEDIT", 0x100000000 + textSize, 0x4000, textSize, linkeditSize, 0);
  let ncmds = 2;
  if (withSignatureCommand) {
    buffer.writeUInt32LE(0x1d, at);
    buffer.writeUInt32LE(16, at + 4);
    buffer.writeUInt32LE(textSize + 0x200, at + 8);
    buffer.writeUInt32LE(linkeditSize - 0x200, at + 12);
    at += 16;
    ncmds += 1;
  }
  buffer.writeUInt32LE(0xfeedfacf, 0);
  buffer.writeUInt32LE(0x0100000c, 4); // CPU_TYPE_ARM64
  buffer.writeUInt32LE(0x2, 12); // MH_EXECUTE
  buffer.writeUInt32LE(ncmds, 16);
  buffer.writeUInt32LE(at - 32, 20);
  for (let i = 0x1000; i < textSize; i += 1) buffer[i] = i % 251; // "code"
  return buffer;
}

describe("ad-hoc Mach-O signing", () => {
  for (const withSignatureCommand of [true, false]) {
    it(`signs so that every page verifies (${withSignatureCommand ? "replacing a signature" : "adding LC_CODE_SIGNATURE"})`, () => {
      const file = join(dir, `macho-${withSignatureCommand}`);
      writeFileSync(file, machO({ withSignatureCommand }));
      adhocSignMachO(file, "caisey-runtime");
      const signed = readFileSync(file);
      const result = verifyMachOSignature(signed);
      expect(result.flags & 0x2).toBe(0x2); // CS_ADHOC
      expect(result.pages).toBe(Math.ceil(result.codeLimit / 4096));
      expect(signed.includes(Buffer.from("caisey-runtime\0"))).toBe(true);
    });
  }

  it("a changed byte anywhere before the signature fails verification (what the kernel would refuse)", () => {
    const file = join(dir, "macho-tampered");
    writeFileSync(file, machO({ withSignatureCommand: true }));
    adhocSignMachO(file, "caisey-runtime");
    const signed = readFileSync(file);
    signed[0x5000] ^= 1;
    expect(() => verifyMachOSignature(signed)).toThrow(/page 5 does not match/);
  });

  it("signing twice (a rebuild) still verifies", () => {
    const file = join(dir, "macho-twice");
    writeFileSync(file, machO({ withSignatureCommand: false }));
    adhocSignMachO(file, "caisey-runtime");
    adhocSignMachO(file, "caisey-runtime");
    expect(() => verifyMachOSignature(readFileSync(file))).not.toThrow();
  });

  it("an unsigned file does not verify", () => {
    expect(() => verifyMachOSignature(machO({ withSignatureCommand: false }))).toThrow(/no LC_CODE_SIGNATURE/);
  });
});

describe("Authenticode stripping", () => {
  it("drops the certificate table and its directory entry, and leaves an unsigned file alone", () => {
    const pe = Buffer.alloc(0x400 + 0x80);
    pe.write("MZ", 0, "latin1");
    pe.writeUInt32LE(0x80, 0x3c);
    pe.write("PE\0\0", 0x80, "latin1");
    const optional = 0x80 + 24;
    pe.writeUInt16LE(0x20b, optional);
    pe.writeUInt32LE(16, optional + 108);
    const entry = optional + 112 + 4 * 8;
    pe.writeUInt32LE(0x400, entry);
    pe.writeUInt32LE(0x80, entry + 4);
    const file = join(dir, "signed.exe");
    writeFileSync(file, pe);
    expect(stripAuthenticode(file)).toBe(true);
    const stripped = readFileSync(file);
    expect(stripped.length).toBe(0x400);
    expect(authenticodeEntry(stripped)).toEqual({ offset: 0, size: 0 });
    expect(stripAuthenticode(file)).toBe(false);
    expect(readFileSync(file).length).toBe(0x400);
  });
});

describe("release signing and build info", () => {
  it("the build signs exactly the protocol's message", () => {
    expect(buildMessage("1.2.3", "windows-x64", "ab".repeat(32))).toBe(protocolMessage("1.2.3", "windows-x64", "ab".repeat(32)));
    // An Ed25519 key pair is what the contract asks for; the build refuses any other type.
    expect(generateKeyPairSync("ed25519").privateKey.asymmetricKeyType).toBe("ed25519");
  });

  it("from source the runtime carries package.json's version, no update key, and the host's platform", () => {
    expect(RUNTIME_VERSION).toBe(JSON.parse(readFileSync("package.json", "utf8")).version);
    expect(UPDATE_PUBLIC_KEY).toBeUndefined();
    expect(RUNTIME_EXECUTABLE).toBe(false);
    expect(RUNTIME_PLATFORM).toBe(runtimePlatformOf(process.platform, process.arch));
    expect(describeBuild()).toMatch(/Node script, no update key \(built from source\)\)$/);
  });

  it("maps Node's platform names to release platforms", () => {
    expect(runtimePlatformOf("win32", "x64")).toBe("windows-x64");
    expect(runtimePlatformOf("darwin", "arm64")).toBe("darwin-arm64");
    expect(runtimePlatformOf("linux", "arm64")).toBe("linux-arm64");
    expect(runtimePlatformOf("win32", "arm64")).toBeUndefined();
    expect(runtimePlatformOf("freebsd", "x64")).toBeUndefined();
    expect(runtimePlatformOf("linux", "ia32")).toBeUndefined();
  });
});
