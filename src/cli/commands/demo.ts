import type { Command } from "../command.ts";

export const demo: Command = {
  name: "demo",
  summary: "Run CycleQD end to end on the embedded zoo of tiny models.",
  usage: "",
  help: `
Runs the whole method on the embedded default: the zoo of tiny LLaMA models and the three
miniature agent skills (code, os, db).`,
  options: {},
  async run() {
    console.log(
      "The CycleQD demo needs the model zoo and the search, which are not part of this version yet.\n" +
        "What is here: `cycleqd doctor` checks the machine, `cycleqd inspect FILE` reads GGUF and safetensors files.",
    );
    return 0;
  },
};
