"""A worker process for the multi-process tests: `python _child.py MODE URL ...`.

Modes: `decide N TAG` records N decisions (printing each decision id once committed),
`share N TAG` records N decisions in each of eight threads, all in two sessions every
process shares, then prints `failed K` (decisions whose commit raised), `watch SUBJECT` prints `terminated <monotonic>` when the subject's checks start to
terminate, `loop TAG` records forever in two threads (the crash test kills it).
"""

from __future__ import annotations

import sys
import threading
import time

from subguard.engine.types import Effect
from subguard.log import open_log

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from conftest import make_ctx, make_decision


def main() -> None:
    mode, url = sys.argv[1], sys.argv[2]
    log = open_log(url, checkpoint_every=25)
    out = sys.stdout
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            out.write(line + "\n")
            out.flush()

    if mode == "decide":
        n, tag = int(sys.argv[3]), sys.argv[4]
        say("ready")
        for i in range(n):
            session = "shared" if i % 5 == 0 else f"{tag}-{i % 3}"
            d = log.record(
                make_ctx(session=session, subject=f"agent-{tag}"),
                make_decision(Effect.DENY if i % 7 == 0 else Effect.ALLOW, "x"),
            )
            say(str(d.id))
        log.close()
    elif mode == "share":
        n, tag = int(sys.argv[3]), sys.argv[4]
        say("ready")
        failed = [0]

        def share(k: int) -> None:
            for i in range(n):
                try:
                    log.record(
                        make_ctx(session=f"shared-{i % 2}", subject=f"agent-{tag}"),
                        make_decision(),
                    )
                except Exception:
                    with lock:
                        failed[0] += 1

        threads = [threading.Thread(target=share, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        say(f"failed {failed[0]}")
        log.close()
    elif mode == "watch":
        subject = sys.argv[3]
        say("ready")
        while True:
            if log.before(make_ctx(subject=subject)).terminate:
                say(f"terminated {time.time()}")
                break
            time.sleep(0.005)
        log.close()
    elif mode == "loop":
        tag = sys.argv[3]
        say("ready")

        def worker(k: int) -> None:
            i = 0
            while True:
                i += 1
                items = [
                    (
                        make_ctx(session=f"{tag}-{k}-{i % 4}"),
                        make_decision(Effect.ALLOW if i % 3 else Effect.TERMINATE, "x"),
                    )
                ]
                if i % 5 == 0:
                    items.append((make_ctx(session=None), make_decision()))
                for d in log.record_many(items):
                    say(str(d.id))

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()


if __name__ == "__main__":
    main()
