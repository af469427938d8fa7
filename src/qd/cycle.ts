/**
 * The cycle of CycleQD: which task is the quality in generation g. The roles of quality and
 * behaviour characteristics rotate over the K tasks every `flipInterval` generations
 * (docs/ALGORITHM.md, "The cycle").
 */

/** Index of the active task q for generation g (1-based): ((g−1) div flipInterval) mod K. */
export function activeTask(generation: number, numTasks: number, flipInterval = 1): number {
  if (!(Number.isSafeInteger(generation) && generation >= 1)) {
    throw new Error(`activeTask: generation counts from 1, got ${generation}`);
  }
  if (!(Number.isInteger(numTasks) && numTasks >= 1)) {
    throw new Error(`activeTask: numTasks must be a positive integer, got ${numTasks}`);
  }
  if (!(Number.isInteger(flipInterval) && flipInterval >= 1)) {
    throw new Error(`activeTask: flipInterval must be a positive integer, got ${flipInterval}`);
  }
  return Math.floor((generation - 1) / flipInterval) % numTasks;
}

/** The active task's name: tasks[((g−1) div flipInterval) mod K]. */
export function activeTaskName<T>(generation: number, tasks: readonly T[], flipInterval = 1): T {
  return tasks[activeTask(generation, tasks.length, flipInterval)];
}
