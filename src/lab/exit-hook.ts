// Cleanup that must run however the lab's process ends: on exit (an uncaught error,
// process.exit) and on SIGINT, SIGTERM and SIGHUP, after which the signal is re-raised so the
// process dies as it would have (unless someone else also listens for it, e.g. `lab up` waiting
// for Ctrl-C). SIGKILL cannot be caught: the start-up sweeps handle what it leaves.
export function onProcessEnd(cleanup: () => void): void {
  process.on('exit', cleanup);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      cleanup();
      if (process.listenerCount(sig) === 1) {
        process.off(sig, onSignal);
        process.kill(process.pid, sig);
      }
    };
    process.on(sig, onSignal);
  }
}
