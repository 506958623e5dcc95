"""Data parallel training on several devices, with the engines Keras runs on.

TensorFlow: `tf.distribute.MirroredStrategy` on the GPUs of one machine, or
`MultiWorkerMirroredStrategy` across machines described by `TF_CONFIG`; the
model must be built (or loaded) inside `strategy.scope()`. JAX:
`keras.distribution.DataParallel`, set before the model is built, over the
devices of one process or, with the same `TF_CONFIG`, of several processes
joined by `jax.distributed` (CPU collectives: gloo). PyTorch has
no such path in Keras's own trainer.

Each replica computes the loss on its share of the global batch; Keras's
TensorFlow trainer sums the replicas' gradients, so the loss each replica
returns is divided by the number of replicas (`per_replica_loss`), as Keras's
own losses do. Under JAX one program runs over the sharded batch and no
scaling is needed.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import warnings

import keras

logger = logging.getLogger(__name__)

# TensorFlow and JAX are imported inside the functions that need them, only
# under that backend: a user of one engine need not install the other.


def replicas_in_sync() -> int:
    """Replicas of the current tf.distribute strategy (1 outside one / not TF)."""
    if keras.backend.backend() != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def per_replica_loss(loss):
    """The share of one replica of a mean loss whose gradients are summed."""
    n = replicas_in_sync()
    return loss if n == 1 else loss / n


def replica_normal(shape, dtype, seed):
    """Standard normal noise for this replica's share of a batch of shape rows.

    One device draws noise for the whole batch. Each replica of a
    tf.distribute strategy runs the same code with the same seed state, so
    drawing for its own rows alone would give every replica the same numbers;
    instead each draws for the global batch (replicas x rows) and keeps its
    rows, so the global batch gets exactly the noise one device would draw.
    """
    n = replicas_in_sync()
    if n == 1:
        return keras.random.normal(shape, dtype=dtype, seed=seed)
    import tensorflow as tf

    rows = shape[0]
    noise = keras.random.normal((n * rows,) + tuple(shape[1:]), dtype=dtype, seed=seed)
    first = tf.distribute.get_replica_context().replica_id_in_sync_group * rows
    return tf.gather(noise, tf.range(rows) + first)


def _multi_worker(strategy) -> bool:
    # The test Keras's TensorFlow trainer makes before reducing a step's logs
    # with the collective path (`reduce_per_replica`).
    import tensorflow as tf

    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def step_logs(logs: dict) -> dict:
    """The logs of one replica's step, shaped for Keras to reduce them.

    Under `MultiWorkerMirroredStrategy` with several workers, Keras 3's
    TensorFlow trainer averages each log over the replicas with
    `strategy.reduce("MEAN", value, axis=0)`, which fails on a scalar
    ("Invalid reduction dimension 0 for input with 0 dimensions",
    keras-team/keras#20585, tensorflow/tensorflow#72388). Given a leading
    axis of length 1, the reduction is the mean over the replicas and the
    result a scalar again, as on one machine. Anywhere else the logs are
    returned as they are.
    """
    if keras.backend.backend() != "tensorflow":
        return logs
    import tensorflow as tf

    if not _multi_worker(tf.distribute.get_strategy()):
        return logs
    return {k: tf.reshape(v, (1,)) for k, v in logs.items()}


# ---------------------------------------------------------------------------
# Several machines: TF_CONFIG, the chief, start-up and lost workers
# ---------------------------------------------------------------------------
# How long a worker waits for every other worker to come up before it stops
# (`--startup-timeout`), and how long a worker that stops answering may stay
# silent before the others give up on it (the coordination service's
# heartbeat). A worker killed outright closes its connections, and the others
# stop at their next collective, within a second or two on one machine.
STARTUP_TIMEOUT = 300.0
HEARTBEAT_TIMEOUT = 30.0
WATCHDOG_GRACE = 30.0  # SPLIT_VAE_WATCHDOG_GRACE overrides it (seconds, >= 0)
EXIT_CLUSTER = 4  # the exit status of a worker stopped by a missing or lost worker
TASK_TYPES = ("chief", "worker")  # what MultiWorkerMirroredStrategy trains with


@dataclasses.dataclass(frozen=True)
class Cluster:
    """This process's place in a multi-worker job, read from `TF_CONFIG`.

    tasks: every (type, address), chief first, then workers by index: the
    order in which TensorFlow numbers the replicas. The chief is the task of
    type "chief", or worker 0 when there is none (TensorFlow's convention).
    """

    tasks: tuple
    task_type: str
    index: int

    @property
    def num_workers(self) -> int:
        return len(self.tasks)

    @property
    def rank(self) -> int:
        return ([t for t, _ in self.tasks].index(self.task_type) + self.index)

    @property
    def address(self) -> str:
        return self.tasks[self.rank][1]

    @property
    def is_chief(self) -> bool:
        has_chief = any(t == "chief" for t, _ in self.tasks)
        return self.task_type == "chief" or (not has_chief and self.index == 0)

    def describe(self) -> str:
        role = "chief" if self.is_chief else "not the chief: writes no files"
        return f"task {self.task_type} {self.index} at {self.address}, {role}"


def read_tf_config(raw=None):
    """The `Cluster` that TF_CONFIG (or raw) describes; None when it is unset or empty.

    ValueError naming the problem for a TF_CONFIG that TensorFlow would
    misread or wait on forever: not JSON, no "cluster" of "chief"/"worker"
    address lists, an address that is not HOST:PORT, the same address twice,
    no "task", or a task type or index the cluster does not have.
    """
    raw = os.environ.get("TF_CONFIG", "") if raw is None else raw
    if not raw.strip():
        return None
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as e:
        raise ValueError(f"TF_CONFIG is not valid JSON ({e}): {raw!r}") from None
    if not isinstance(spec, dict) or not isinstance(spec.get("cluster"), dict):
        raise ValueError('TF_CONFIG needs a "cluster" object listing the workers, e.g. '
                         '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
                         f'"task": {{"type": "worker", "index": 0}}}}; received {raw!r}')
    cluster = spec["cluster"]
    other = sorted(set(cluster) - set(TASK_TYPES))
    if other:
        raise ValueError(f"TF_CONFIG's cluster has {other} tasks: MultiWorkerMirroredStrategy "
                         f"trains with {list(TASK_TYPES)} tasks only")
    tasks = []
    for kind in TASK_TYPES:
        addresses = cluster.get(kind, [])
        if not isinstance(addresses, list) or (kind == "chief" and len(addresses) > 1):
            raise ValueError(f'TF_CONFIG cluster["{kind}"] must be a list of HOST:PORT '
                             f"addresses{' (one chief at most)' if kind == 'chief' else ''}, "
                             f"received {addresses!r}")
        tasks += [(kind, _check_address(a, kind, i)) for i, a in enumerate(addresses)]
    if not tasks:
        raise ValueError("TF_CONFIG's cluster lists no chief and no worker")
    seen = [a for _, a in tasks]
    if len(set(seen)) < len(seen):
        raise ValueError(f"TF_CONFIG lists an address twice: {seen}")
    task = spec.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ValueError('TF_CONFIG needs "task": {"type": "worker", "index": I}, the index '
                         f"of this machine in the cluster's list; received task={task!r}")
    kind, index = task["type"], task["index"]
    count = sum(t == kind for t, _ in tasks)
    if kind not in TASK_TYPES or not count:
        raise ValueError(f"TF_CONFIG task type {kind!r} is not in the cluster "
                         f"(types: {sorted({t for t, _ in tasks})})")
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise ValueError(f"TF_CONFIG task index {index!r} is out of range: the cluster has "
                         f"{count} {kind!r} tasks, indices 0 to {count - 1}")
    return Cluster(tuple(tasks), kind, index)


def _check_address(address, kind, i) -> str:
    host, sep, port = str(address).rpartition(":")
    if not (isinstance(address, str) and sep and host and port.isdigit()
            and 0 < int(port) < 65536):
        raise ValueError(f'TF_CONFIG cluster["{kind}"][{i}] is {address!r}, not HOST:PORT '
                         "with a port from 1 to 65535")
    return address


def check_port_free(cluster: Cluster) -> None:
    """ValueError when this task's port is taken by another program.

    TensorFlow would otherwise fail deep in its server start, or leave the
    other workers waiting. Checked by binding the port, as its server will.
    """
    port = int(cluster.address.rpartition(":")[2])
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError as e:
            raise ValueError(
                f"port {port} of this worker ({cluster.describe()}) is taken by another "
                f"program ({e.strerror}): stop it, or give this task another port in "
                "every worker's TF_CONFIG") from None


def is_chief() -> bool:
    """True unless TF_CONFIG names this process a worker other than the chief.

    The chief writes the run's files; every other worker computes what the
    chief computes (collectives need them all) and writes nothing.
    """
    cluster = read_tf_config()
    return cluster is None or cluster.is_chief


def output_dir(out: str) -> str:
    """Where this process writes the files of a run whose directory is out.

    out itself on the chief (or outside a multi-worker job). On every other
    worker, an empty scratch directory that is removed when the program
    ends: those workers must still save and draw (saving reads variables
    the workers aggregate, and drawing predicts, which gathers across
    workers), but their files go nowhere.
    """
    if is_chief():
        return os.fspath(out)
    scratch = tempfile.mkdtemp(prefix="split_vae_worker_")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    return scratch


def _bound_coordination(cluster: Cluster, startup_timeout: float) -> None:
    # MultiWorkerMirroredStrategy sets up TensorFlow's coordination service
    # with no bound on the wait for the cluster, unless one is configured
    # before it starts; it then keeps this configuration.
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.eager import context

    jobs = [coordination_config_pb2.CoordinatedJob(
        name=kind, num_tasks=sum(t == kind for t, _ in cluster.tasks))
        for kind in TASK_TYPES if any(t == kind for t, _ in cluster.tasks)]
    leader = cluster.tasks[0][0]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=f"/job:{leader}/replica:0/task:0",
        coordinated_jobs=jobs, cluster_register_timeout_in_ms=int(startup_timeout * 1000),
        heartbeat_timeout_in_ms=int(HEARTBEAT_TIMEOUT * 1000))


class ClusterError(RuntimeError):
    """The workers of TF_CONFIG did not all come up, or one went away."""


def watchdog_grace() -> float:
    """WATCHDOG_GRACE, or the seconds in SPLIT_VAE_WATCHDOG_GRACE (a cluster whose
    workers report start-up errors slowly may want more, a test less)."""
    raw = os.environ.get("SPLIT_VAE_WATCHDOG_GRACE", "").strip()
    if not raw:
        return WATCHDOG_GRACE
    try:
        grace = float(raw)
    except ValueError:
        grace = float("nan")
    if not 0 <= grace < float("inf"):
        raise ClusterError(f"SPLIT_VAE_WATCHDOG_GRACE={raw!r}: expected seconds, a finite "
                           "number >= 0")
    return grace


def multi_worker_strategy(cluster: Cluster, startup_timeout: float = STARTUP_TIMEOUT):
    """`MultiWorkerMirroredStrategy` for cluster, waiting at most startup_timeout s.

    Port checked first (`check_port_free`). When the other workers do not all
    come up in time, a worker that TensorFlow lets go raises ClusterError.
    The coordination service's leader (the first task) TensorFlow keeps
    waiting in native code, holding the interpreter, where neither an
    exception nor SIGTERM reaches it: a watchdog process prints the message
    and ends it with SIGKILL (exit status 137), `watchdog_grace()` seconds later
    (so that TensorFlow's own error comes first where there is one).
    """
    import tensorflow as tf

    check_port_free(cluster)
    _bound_coordination(cluster, startup_timeout)
    logger.info("multi-worker: %s; waiting up to %gs for %d workers", cluster.describe(),
                startup_timeout, cluster.num_workers)
    message = (f"the {cluster.num_workers} workers of TF_CONFIG did not all come up within "
               f"{startup_timeout:g}s; start the same command on every worker")
    with _watchdog(startup_timeout + watchdog_grace(), message):
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except tf.errors.OpError as e:
            raise ClusterError(f"{message} ({_first_line(e)})") from None


# Sleeps, then, if its parent is still the process that started it, says why
# and ends it.
_WATCHDOG = """import os, sys, time
time.sleep(float(sys.argv[1]))
if os.getppid() == int(sys.argv[3]):
    sys.stderr.write("[split_vae] error: " + sys.argv[2] + "\\n")
    os.kill(int(sys.argv[3]), 9)
"""


def _stderr_fd():
    # Python's stderr, which may not be file descriptor 2: the command line
    # filters TensorFlow's native output through a pipe read by a thread of
    # this process, which cannot run while native code holds it.
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None


@contextlib.contextmanager
def _watchdog(seconds: float, message: str):
    proc = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(seconds), message,
                             str(os.getpid())], stdin=subprocess.DEVNULL,
                            stderr=_stderr_fd())
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def check_same_on_workers(value: int, what: str) -> None:
    """ValueError unless every worker of the current strategy holds the same value.

    Called inside the strategy's scope; a collective, so every worker must
    call it. Used for the epoch a run resumes from: a worker that did not
    find the chief's checkpoint would otherwise train other weights.
    """
    import tensorflow as tf

    strategy = tf.distribute.get_strategy()
    if not _multi_worker(strategy):
        return

    @tf.function
    def gather():
        return strategy.run(lambda: tf.distribute.get_replica_context().all_gather(
            tf.constant([value], tf.int64), axis=0))

    values = strategy.experimental_local_results(gather())[0].numpy().tolist()
    if len(set(values)) > 1:
        raise ValueError(
            f"the workers disagree on {what}: {values} (by worker). The run's directory "
            "must be the same on every worker (a shared file system), so that all "
            "resume from the chief's checkpoint")


def lost_worker_errors() -> tuple:
    """The exceptions a collective raises when another worker went away.

    Under JAX, the runtime's error of every kind: `is_lost_worker` tells
    which of them says that a peer went away.
    """
    if keras.backend.backend() == "jax":
        import jax

        # A collective's failure also reaches us as a ValueError with the
        # runtime's status text ("UNKNOWN: Gloo AllGather failed: ... Connection
        # reset by peer", seen in CI): `is_lost_worker` reads the text.
        return (jax.errors.JaxRuntimeError, ValueError, RuntimeError)
    if keras.backend.backend() != "tensorflow":
        return ()
    import tensorflow as tf

    return (tf.errors.UnavailableError, tf.errors.AbortedError,
            tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.InternalError)


# What JAX's CPU collectives (gloo) and its coordination service say when a
# peer process went away: "Gloo all-reduce failed: ... Connection reset by
# peer", "Connection closed by peer", "... heartbeat timeout".
_JAX_LOST = ("gloo", "connection", "heartbeat", "unavailable")


def is_lost_worker(error) -> bool:
    """Whether error (one of `lost_worker_errors`) says that a peer went away.

    Every TensorFlow error of that list does; under JAX, a runtime error
    that names the collectives' connection or the peers' heartbeat.
    """
    if not isinstance(error, lost_worker_errors()):
        return False
    if keras.backend.backend() != "jax":
        return True
    import jax

    text = str(error).lower()
    if isinstance(error, jax.errors.JaxRuntimeError):
        return any(word in text for word in _JAX_LOST)
    # Another type carrying the runtime's text: only the collectives' own words.
    return "gloo" in text or "heartbeat" in text


def lost_worker_message(error, checkpoint: str | None = None) -> str:
    """What a user reads when a collective failed because a worker went away."""
    where = (f" The last complete checkpoint is {checkpoint}." if checkpoint else "")
    return (f"a worker stopped answering, so training stopped ({_first_line(error)}).{where} "
            "Start the same command again on every worker to resume from it.")


def _first_line(error) -> str:
    # TensorFlow's message starts with "Graph execution error:" and a
    # traceback of the graph; say the line that names the cause.
    text = str(getattr(error, "message", None) or error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines:
        if any(w in line.lower() for w in ("abort", "connection", "deadline", "unavailable")):
            return line
    return lines[0] if lines else type(error).__name__


def jax_processes(cluster: Cluster, startup_timeout: float = STARTUP_TIMEOUT) -> None:
    """Join the JAX processes of cluster (TF_CONFIG read under JAX).

    The same TF_CONFIG as under TensorFlow: the first task (the chief, or
    worker 0) is JAX's coordinator at its address and process 0; each task's
    place in the cluster is its process id. Only the coordinator's port is
    opened (checked first, `check_port_free`); JAX's CPU collectives (gloo)
    connect the processes. When the others do not all come up within
    startup_timeout seconds, JAX's runtime ends this process (SIGABRT,
    "DEADLINE_EXCEEDED"); ClusterError where it raises an exception instead. Once joined, `jax.devices()` lists every
    process's devices, and `keras.distribution.DataParallel` over them gives
    each process its share of every tf.data batch.
    """
    import jax

    if jax.distributed.is_initialized():
        return
    # The shares of process_shard have no known length (a filter drops a
    # partial last batch), so Keras warns at the end of every epoch that the
    # input "ran out of data"; that is how the epoch ends here.
    warnings.filterwarnings("ignore", message="Your input ran out of data",
                            category=UserWarning)
    if cluster.rank == 0:
        check_port_free(cluster)
    logger.info("JAX processes: %s; waiting up to %gs for %d processes (after that, JAX "
                "ends this process: DEADLINE_EXCEEDED)", cluster.describe(), startup_timeout,
                cluster.num_workers)
    try:
        jax.distributed.initialize(
            coordinator_address=cluster.tasks[0][1], num_processes=cluster.num_workers,
            process_id=cluster.rank, initialization_timeout=max(int(startup_timeout), 1),
            heartbeat_timeout_seconds=int(HEARTBEAT_TIMEOUT))
    except Exception as e:  # JAX raises its runtime's XlaRuntimeError
        raise ClusterError(
            f"the {cluster.num_workers} processes of TF_CONFIG did not all come up within "
            f"{startup_timeout:g}s; start the same command on every worker "
            f"({_first_line(e)})") from None


def process_shard(dataset, batch_size: int, processes: int, index: int):
    """This process's share of every global batch of a batched tf.data dataset.

    Global batch k (batch_size examples) is cut into processes equal parts
    and this process gets part index, so that the parts, put back together
    by JAX in process order, are batch k. A last global batch smaller than
    batch_size is dropped: every process must feed the same shape.
    """
    import tensorflow as tf

    def whole(*batch):
        return tf.shape(tf.nest.flatten(batch)[0])[0] == batch_size

    return (dataset.filter(whole).rebatch(batch_size // processes)
            .shard(processes, index).prefetch(tf.data.AUTOTUNE))


def _process_data_parallel():
    # Keras's DataParallel shards a tf.data dataset across processes only
    # when tf.data can tell its batch size statically, which it cannot after
    # a map (our pipelines gather images in one); this one knows it.
    class ProcessDataParallel(keras.distribution.DataParallel):
        def __init__(self, batch_size, **kwargs):
            super().__init__(**kwargs)
            self.global_batch_size = batch_size

        def distribute_dataset(self, dataset):
            import jax

            if jax.process_count() == 1:
                return dataset
            return process_shard(dataset, self.global_batch_size, jax.process_count(),
                                 jax.process_index())

    return ProcessDataParallel


def data_parallel(batch_size: int, startup_timeout: float = STARTUP_TIMEOUT):
    """A context in which to build, load and train a model on every device.

    Returns (scope, description): `with scope():` around building, loading
    and fitting the model. ValueError when fewer than two
    devices (or workers) are found, on PyTorch, when batch_size does not
    split evenly over the devices, or for a wrong TF_CONFIG
    (`read_tf_config`, `check_port_free`); RuntimeError when the workers of
    TF_CONFIG do not all come up within startup_timeout seconds.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        cluster = read_tf_config()
        if cluster is not None and cluster.num_workers > 1:
            strategy = multi_worker_strategy(cluster, startup_timeout)
            what = f"MultiWorkerMirroredStrategy, {cluster.num_workers} workers"
        else:
            gpus = tf.config.list_logical_devices("GPU")
            # Several logical CPUs exist only when a program configured them
            # (tf.config.set_logical_device_configuration), as the tests do.
            devices = gpus if len(gpus) > 1 else tf.config.list_logical_devices("CPU")
            if len(devices) < 2:
                raise ValueError(
                    f"--distribute needs at least 2 devices, found {len(devices)} "
                    f"({', '.join(d.name for d in devices) or 'none'}); "
                    "drop --distribute, or set TF_CONFIG to train on several machines")
            names = [d.name for d in devices]
            strategy = tf.distribute.MirroredStrategy(names)
            what = f"MirroredStrategy on {len(names)} devices: {', '.join(names)}"
        _check_split(batch_size, strategy.num_replicas_in_sync)
        return strategy.scope, what
    if backend == "jax":
        import jax

        cluster = read_tf_config()
        if cluster is not None and cluster.num_workers > 1:
            jax_processes(cluster, startup_timeout)
        devices = jax.devices()  # every process's, after jax_processes
        if len(devices) < 2:
            raise ValueError(
                f"--distribute needs at least 2 devices, JAX found {len(devices)} "
                f"({', '.join(map(str, devices))}); drop --distribute, or set TF_CONFIG "
                "to train on several processes")
        _check_split(batch_size, len(devices))
        keras.distribution.set_distribution(
            _process_data_parallel()(batch_size, devices=devices))
        where = (f", {jax.process_count()} processes" if jax.process_count() > 1 else "")
        return contextlib.nullcontext, (
            f"keras.distribution.DataParallel on {len(devices)} devices{where}")
    raise ValueError(
        f"--distribute supports the tensorflow and jax backends, not {backend}; "
        "set KERAS_BACKEND=tensorflow or jax")


def _check_split(batch_size: int, replicas: int) -> None:
    if batch_size % replicas:
        raise ValueError(
            f"the batch size {batch_size} does not split evenly over {replicas} devices; "
            f"use a multiple of {replicas} (--batch-size)")
