"""Devices and processes: one data-parallel mesh, and multi-process start-up.

digitjax runs data parallel the big_vision way: every array is placed replicated on a
1-D mesh named 'data' over all devices of all processes, and the train step constrains
its gathered batch to be split along that axis. XLA then partitions the step and
all-reduces the gradients (and BatchNorm statistics, which are computed over the global
batch). On one device nothing changes: no constraint is added at all.

Several processes (one per host or GPU) join with jax.distributed; launch.sh sets the
DIGITJAX_* variables below. Every process loads the same data and runs the same loop;
only process 0 writes reports (orbax coordinates checkpoint writes itself).
"""
from __future__ import annotations

import os

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P


def initialize_from_env() -> None:
  """jax.distributed.initialize from DIGITJAX_* variables (no-op for one process).

  - DIGITJAX_DISTRIBUTED=auto: let JAX detect the cluster (SLURM, ...), as in sbatch.
  - DIGITJAX_NUM_PROCESSES=N, DIGITJAX_PROCESS_ID=i, DIGITJAX_COORDINATOR=host:port:
    explicit, as `./launch.sh --processes N` sets them on one machine.
  """
  if os.environ.get("DIGITJAX_DISTRIBUTED") == "auto":
    jax.distributed.initialize()
    return
  n = int(os.environ.get("DIGITJAX_NUM_PROCESSES", "1"))
  if n <= 1:
    return
  # CPU devices of different processes talk through gloo (GPUs use NCCL regardless).
  # Asking for the backend here would initialise it too early, so set it unconditionally.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  jax.distributed.initialize(
      coordinator_address=os.environ.get("DIGITJAX_COORDINATOR", "localhost:12355"),
      num_processes=n, process_id=int(os.environ["DIGITJAX_PROCESS_ID"]))


def is_main_process() -> bool:
  return jax.process_index() == 0


def data_mesh() -> Mesh:
  return Mesh(np.array(jax.devices()), ("data",))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """Split along the leading (batch) axis."""
  return NamedSharding(mesh, P("data"))


def to_host(tree):
  """Device arrays -> numpy, also for replicated arrays spanning other processes."""
  def one(x):
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
      return np.asarray(x.addressable_data(0))
    return np.asarray(x)
  return jax.tree.map(one, tree)
