// A worker thread of `odpsim explore --jobs N`: rebuilds the exploration from its WorkerInit and
// runs the chunks the main thread sends, answering each with its ChunkDone.
import { parentPort, workerData } from 'node:worker_threads';
import { Exploration } from '../check/explore.ts';
import { type Chunk, ChunkCoverage, runChunk, type WorkerInit } from './explore-pool.ts';
import { loadWorld } from './world-ref.ts';

const init = workerData as WorkerInit;
const port = parentPort!;
const never = (): boolean => false;

try {
  // Functions do not cross to a worker: the coverage hook is made here.
  const cov = init.coverage ? new ChunkCoverage() : null;
  const options = cov === null ? init.options : { ...init.options, onKernel: cov.onKernel };
  const x = new Exploration(await loadWorld(init.world), options, init.stepsEstimate);
  port.on('message', (c: Chunk) => {
    const run = () =>
      runChunk(
        x,
        c,
        never,
        () => 0,
        () => {},
      );
    (cov === null ? run() : cov.around(run)).then(
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
