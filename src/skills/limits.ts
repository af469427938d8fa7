/**
 * Resource limits for running model output. Generous for what the skills need (a one-line
 * function, a shell command, one SQL statement) and small enough that a runaway answer
 * costs a few seconds at most.
 */

/** Python answers and their tests. */
export const PYTHON_LIMITS = {
  timeoutMs: 5000,
  cpuSeconds: 4,
  memoryBytes: 512 * 1024 * 1024,
  maxProcesses: 16,
  maxFileBytes: 1024 * 1024,
  workdirBytes: 8 * 1024 * 1024,
  maxOutputBytes: 64 * 1024,
};

/** Shell commands, with room for pipelines. */
export const SHELL_LIMITS = {
  timeoutMs: 5000,
  cpuSeconds: 3,
  memoryBytes: 512 * 1024 * 1024,
  maxProcesses: 32,
  maxFileBytes: 1024 * 1024,
  workdirBytes: 8 * 1024 * 1024,
  maxOutputBytes: 64 * 1024,
};

/** One SQL statement on a small database; the runner also interrupts it after 2 s. */
export const SQL_LIMITS = {
  timeoutMs: 8000,
  cpuSeconds: 6,
  memoryBytes: 512 * 1024 * 1024,
  maxProcesses: 8,
  maxFileBytes: 4 * 1024 * 1024,
  workdirBytes: 16 * 1024 * 1024,
  maxOutputBytes: 4 * 1024 * 1024,
};
