// A worker thread of `odpsim explore --jobs N`: rebuilds the exploration from its WorkerInit and
// runs the chunks the main thread sends, answering each with its ChunkDone.
import { parentPort, workerData } from 'node:worker_threads';
import { Exploration } from '../check/explore.ts';
import { type Chunk, runChunk, type WorkerInit } from './explore-pool.ts';
import { loadWorld } from './world-ref.ts';

const init = workerData as WorkerInit;
const port = parentPort!;
const never = (): boolean => false;

try {
  const x = new Exploration(await loadWorld(init.world), init.options, init.stepsEstimate);
  port.on('message', (c: Chunk) => {
    runChunk(
      x,
      c,
      never,
      () => 0,
      () => {},
    ).then(
      (d) => port.postMessage({ ...d, result: undefined }),
      (e: unknown) =>
        port.postMessage({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
    );
  });
} catch (e) {
  port.on('message', () =>
    port.postMessage({ error: e instanceof Error ? (e.stack ?? e.message) : String(e) }),
  );
}
