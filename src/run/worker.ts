/**
 * An evaluation worker process (forked by the pool in evaluator.ts). It builds its own
 * engine and skills from the setup it is sent, then evaluates one job at a time. It exits
 * when its parent goes away, so a killed runner leaves no workers behind.
 */
import type { WorkerReply, WorkerRequest } from "./evaluator.ts";
import { ModelEvaluator } from "./model-evaluator.ts";

const send = (msg: WorkerReply) => process.send?.(msg);
let evaluator: ModelEvaluator | undefined;

process.on("disconnect", () => process.exit(0));
// Ctrl-C reaches the whole process group; the parent decides when workers stop.
process.on("SIGINT", () => {});

process.on("message", async (msg: WorkerRequest) => {
  switch (msg.type) {
    case "init":
      try {
        evaluator = await ModelEvaluator.create(msg.setup);
        send({ type: "ready" });
      } catch (e) {
        // Exit only once the message is out, so the pool sees why.
        process.send?.(
          { type: "init-error", message: (e as Error).message } satisfies WorkerReply,
          () => process.exit(1),
        );
      }
      break;
    case "job":
      try {
        if (!evaluator) throw new Error("worker: job before init");
        const result = await evaluator.evaluate(msg.job);
        send({ type: "result", id: msg.id, result });
      } catch (e) {
        send({ type: "error", id: msg.id, message: (e as Error).message });
      }
      break;
    case "close":
      await evaluator?.close();
      process.exit(0);
  }
});
