"""A small shared pool of threads that run monitor callbacks off libca's thread.

:mod:`CaChannel.monitor` hands each subscription that has work waiting to
this pool as a *job*: a callable that delivers a bounded batch of that
subscription's waiting updates and returns True when more are waiting. The
pool guarantees what makes per-subscription order hold:

* a job is in the ready queue or being run at most once at a time (the
  caller submits it only when it was idle; see ``monitor.Subscription``), so
  one subscription is never run by two workers at once;
* a job that returns True goes to the back of the ready queue, behind the
  other subscriptions that are waiting (round robin, so one busy subscription
  cannot starve the others).

The workers (daemon threads named ``CaChannel-monitor``, ``DEFAULT_THREADS``
of them unless :func:`set_threads` says otherwise) are started on first use.
Before running a job each worker attaches itself to that job's CA context
(once per context), so callbacks may call ``ca`` functions, blocking ones
too. A callback that blocks occupies its worker only; the other workers go on
with the other subscriptions, until every worker is blocked.

Nothing here calls user code or libca while holding the pool's lock, and
:meth:`Pool.submit` only appends to a deque (and takes the lock to wake a
worker when one waits): constant time, no waiting on a worker. After
``os.fork()`` the child gets a fresh pool (the parent's workers do not exist
there).

The updates reach the subscriptions through the :class:`Intake`: one
``ca.EventQueue`` that libca's threads fill without the GIL (C extension),
taken in batches by one daemon thread (``CaChannel-intake``) that stores
each update in its subscription (the constant-time ``put`` of
``monitor.Subscription``) and submits the subscriptions that became ready.
Taking the GIL on libca's thread for every update of 100,000 monitors cost
more than the store itself; the intake takes it once per batch. One thread,
one queue: the updates of a subscription keep their order. Where there is no
``EventQueue`` (Windows) subscriptions are called back on libca's thread as
before (:func:`intake_queue` is None).
"""
from __future__ import annotations

import collections
import os
import select
import threading
from typing import Any, Callable, Deque, List, Optional, Tuple

from . import ca, core

__all__ = ["THREAD_NAME", "INTAKE_THREAD_NAME", "DEFAULT_THREADS", "Pool", "pool", "threads",
           "set_threads", "Intake", "intake_queue"]

#: the name of every worker thread
THREAD_NAME = "CaChannel-monitor"
#: the number of workers unless :func:`set_threads` is called
DEFAULT_THREADS = 4
#: the name of the thread that takes the updates from libca (see :class:`Intake`)
INTAKE_THREAD_NAME = "CaChannel-intake"
#: updates taken per pass: their objects are made and freed a chunk at a time
INTAKE_BATCH = 256

Job = Callable[[], bool]


class Pool:
    """A ready queue of ``(context, job)`` served by up to ``size`` worker threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.pid = os.getpid()
        self._cond = threading.Condition(threading.Lock())
        self._ready: Deque[Tuple[Any, Job]] = collections.deque()
        self._workers = 0
        self._stopped = False
        # workers waiting (or about to wait) for a job, counted under the lock;
        # a submit takes the lock to wake one only when there are some
        self._idle = 0
        # the thread whose submits are collected and queued at once (the
        # intake, during a batch): one lock and one wake-up per batch
        self._batching: Optional[int] = None
        self._batch: List[Tuple[Any, Job]] = []

    @property
    def workers(self) -> int:
        """Worker threads alive (started and not yet told to stop)."""
        return self._workers

    def start(self) -> None:
        """Start workers up to ``size`` (from a user's thread: at subscribe time)."""
        while True:
            with self._cond:
                if self._stopped or self._workers >= self.size:
                    return
                self._workers += 1
            try:
                threading.Thread(target=self._work, name=THREAD_NAME, daemon=True).start()
            except BaseException:
                with self._cond:
                    self._workers -= 1
                raise

    def submit(self, context: Any, job: Job) -> None:
        """Queue ``job`` (the intake, libca's thread or a worker): constant time, no user code."""
        if self._batching == threading.get_ident():
            self._batch.append((context, job))
            return
        self._ready.append((context, job))  # a deque's append is atomic: see _next
        if self._idle:
            with self._cond:
                self._cond.notify()

    def begin_batch(self) -> None:
        """Collect the calling thread's submits until :meth:`end_batch`."""
        self._batching = threading.get_ident()

    def end_batch(self) -> None:
        """Queue the collected submits at once, waking as many workers."""
        self._batching = None
        batch, self._batch = self._batch, []
        if batch:
            self._ready.extend(batch)
            if self._idle:
                with self._cond:
                    self._cond.notify(len(batch))

    def resize(self, size: int) -> None:
        """Change the number of workers: more are started, surplus ones end when idle."""
        with self._cond:
            self.size = size
            self._cond.notify_all()
        self.start()

    def stop(self) -> None:
        """Let the workers end (exit, or an abandoned pool); queued jobs are dropped."""
        with self._cond:
            self._stopped = True
            self._ready.clear()
            self._cond.notify_all()

    def _next(self) -> Optional[Tuple[Any, Job]]:
        # Jobs are taken without the lock while there are any (a deque's
        # popleft is atomic): the workers and the intake queued on the pool's
        # lock for every job, and each hand-over of a contended lock is a
        # sleep and a wake-up. The lock is for waiting only. A worker counts
        # itself idle *before* it looks at the queue, and a submit appends
        # *before* it reads the count: either the worker sees the job or the
        # submit sees the worker and wakes it.
        ready = self._ready
        while True:
            if not (self._stopped or self._workers > self.size):
                try:
                    return ready.popleft()
                except IndexError:
                    pass
            with self._cond:
                if self._stopped or self._workers > self.size:
                    self._workers -= 1
                    self._cond.notify()  # pass a wake-up this worker took on
                    return None
                self._idle += 1
                try:
                    if not ready:
                        self._cond.wait()
                finally:
                    self._idle -= 1

    def _work(self) -> None:
        attached: Any = None
        while True:
            entry = self._next()
            if entry is None:
                return
            context, job = entry
            if context is not None and context is not attached and context != attached:
                attached = _attach(context, attached)
            try:
                again = job()
            except BaseException:  # a job reports its callbacks' errors itself
                again = False
                core.report_callback_error("monitor delivery")
            if again:
                self.submit(context, job)


def _attach(context: Any, attached: Any) -> Any:
    """Attach the calling worker to ``context`` (leaving ``attached``); the context
    now considered attached. A destroyed context is not retried: its
    subscriptions are dead, their callbacks just cannot use CA."""
    try:
        if attached is not None:
            ca.detach_context()
        ca.attach_context(context)
    except Exception:
        pass
    return context


class Intake:
    """The ``ca.EventQueue`` of every pool-delivered subscription and its thread.

    Made on first use: :meth:`queue` returns the queue (for
    ``ca.create_subscription(..., queue=)``), starting the thread, or None
    where the backend has no ``EventQueue`` (Windows). The thread waits for
    the queue's file descriptor and calls each event's callback (a
    subscription's store) with the GIL held once per batch of
    :data:`INTAKE_BATCH`; an exception there is a bug of ours, reported and
    survived."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: Any = None
        self._unavailable = False

    def queue(self) -> Any:
        q = self._queue
        if q is not None or self._unavailable:
            return q
        with self._lock:
            if self._queue is None and not self._unavailable:
                try:
                    q = ca.EventQueue()
                    poller = select.poll()
                    poller.register(q.fileno(), select.POLLIN)
                except (AttributeError, NotImplementedError, OSError):
                    self._unavailable = True
                    return None
                threading.Thread(target=self._run, args=(q, poller), name=INTAKE_THREAD_NAME,
                                 daemon=True).start()
                self._queue = q
            return self._queue

    @staticmethod
    def _run(q: Any, poller: Any) -> None:
        take = q.take
        while True:
            poller.poll()  # the GIL is released while nothing is queued
            jobs = pool()
            jobs.begin_batch()
            try:
                for fn, value in take(INTAKE_BATCH):
                    try:
                        fn(value)
                    except BaseException:
                        core.report_callback_error("monitor intake")
            finally:
                jobs.end_batch()


_pool_lock = threading.Lock()
_pool = Pool(DEFAULT_THREADS)
_intake = Intake()


def intake_queue() -> Any:
    """The ``ca.EventQueue`` that pool-delivered subscriptions use (see
    :class:`Intake`), or None where there is none."""
    return _intake.queue()


def pool() -> Pool:
    """The process's pool (a new one in a forked child)."""
    return _pool


def threads() -> int:
    """The number of delivery threads the pool runs at most."""
    return _pool.size


def set_threads(n: int) -> int:
    """Run at most ``n`` (>= 1) delivery threads from now on; returns the previous number.

    More are started at once if any are running; surplus workers end once
    they are idle (a worker in a callback finishes its batch first).
    """
    n = core.checks.integer(n, what="delivery threads", low=1)
    with _pool_lock:
        previous = _pool.size
        if _pool.workers:
            _pool.resize(n)
        else:
            _pool.size = n
    return previous


def _after_fork_child() -> None:
    global _pool, _pool_lock, _intake
    _pool_lock = threading.Lock()
    _pool = Pool(_pool.size)
    _intake = Intake()  # the parent's intake thread does not exist here


def _on_exit() -> None:
    _pool.stop()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_child)
core.context.at_exit(_on_exit)
