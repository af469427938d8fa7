import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createGemm } from "../../linalg/index.ts";
import { checkSandbox } from "../../sandbox/index.ts";
import type { Command } from "../command.ts";

const run = promisify(execFile);

interface Check {
  name: string;
  ok: boolean;
  required: boolean;
  detail: string;
  fix?: string;
}

async function checkNode(): Promise<Check> {
  const major = Number(process.versions.node.split(".")[0]);
  return {
    name: "node",
    ok: major >= 20,
    required: true,
    detail: `v${process.versions.node}`,
    fix: "install Node.js 20 or newer",
  };
}

async function checkLlama(): Promise<Check> {
  try {
    const { getLlama } = await import("node-llama-cpp");
    const llama = await getLlama({ build: "never", gpu: "auto" });
    const backend = llama.gpu === false ? "CPU" : llama.gpu.toUpperCase();
    const detail = `llama.cpp ${llama.buildType} binary, backend ${backend}, ${llama.cpuMathCores} CPU cores`;
    await llama.dispose();
    return { name: "llama.cpp", ok: true, required: true, detail };
  } catch (e) {
    return {
      name: "llama.cpp",
      ok: false,
      required: true,
      detail: (e as Error).message.split("\n")[0],
      fix: "reinstall dependencies with `npm ci`; node-llama-cpp ships prebuilt llama.cpp binaries for Linux, macOS and Windows",
    };
  }
}

/** Times square GEMMs for about a second and reports GFLOP/s. */
async function checkGemm(): Promise<Check> {
  const warnings: string[] = [];
  const gemm = await createGemm({ backend: "auto", warn: (m) => warnings.push(m) });
  try {
    const n = 512;
    const a = new Float32Array(n * n).fill(0.5);
    const b = new Float32Array(n * n).fill(0.25);
    await gemm.matmul(a, b, n, n, n);
    let reps = 0;
    const start = performance.now();
    while (performance.now() - start < 1000) {
      await gemm.matmul(a, b, n, n, n);
      reps++;
    }
    const seconds = (performance.now() - start) / 1000;
    const gflops = (2 * n ** 3 * reps) / seconds / 1e9;
    const fallback = gemm.name !== "onnxruntime";
    return {
      name: "gemm",
      ok: !fallback,
      required: false,
      detail: `${gemm.name}, ${gflops.toFixed(1)} GFLOP/s at ${n}³${warnings.length ? ` (${warnings[0]})` : ""}`,
      fix: fallback ? "reinstall onnxruntime-node (`npm ci`) for fast matrix products" : undefined,
    };
  } finally {
    await gemm.dispose();
  }
}

async function checkSandboxTool(): Promise<Check> {
  const s = await checkSandbox();
  return {
    name: "sandbox",
    ok: s.ok,
    required: true,
    detail: s.ok
      ? `${s.mode} mode (${s.tool}): isolated namespaces, no network, resource limits; ` +
        (s.mode === "root"
          ? "each program runs as a uid of its own"
          : "programs run as your uid with no capabilities, each in PID and user namespaces of its own")
      : `${s.mode} mode: ${s.problems.join("; ")}`,
    fix: s.fix,
  };
}

async function checkPython(): Promise<Check> {
  try {
    const { stdout } = await run("python3", ["--version"]);
    return { name: "python3", ok: true, required: true, detail: stdout.trim() };
  } catch {
    return {
      name: "python3",
      ok: false,
      required: true,
      detail: "python3 not found on PATH (the code skill runs model-written Python)",
      fix: "apt-get install python3",
    };
  }
}

export const doctor: Command = {
  name: "doctor",
  summary:
    "Check that this machine can run cycleqd: Node, llama.cpp, GEMM speed, sandbox, python3.",
  usage: "[--json]",
  help: `
Checks every piece cycleqd needs and prints one line each. Exits 1, with a fix-it
message, when something required is missing.

Options:
  --json   print the checks as JSON`,
  options: { json: { type: "boolean" } },
  async run(args) {
    const checks: Check[] = [];
    for (const probe of [checkNode, checkLlama, checkGemm, checkSandboxTool, checkPython]) {
      try {
        checks.push(await probe());
      } catch (e) {
        checks.push({ name: probe.name, ok: false, required: true, detail: (e as Error).message });
      }
    }
    const failed = checks.filter((c) => !c.ok && c.required);
    if (args.values.json) {
      console.log(JSON.stringify({ ok: failed.length === 0, checks }, null, 2));
    } else {
      for (const c of checks) {
        console.log(
          `${c.ok ? "ok  " : c.required ? "FAIL" : "warn"}  ${c.name.padEnd(9)}  ${c.detail}`,
        );
        if (!c.ok && c.fix) console.log(`      ${"".padEnd(9)}  fix: ${c.fix}`);
      }
      console.log(
        failed.length
          ? `\n${failed.length} required check(s) failed.`
          : "\nAll required checks passed.",
      );
    }
    return failed.length ? 1 : 0;
  },
};
