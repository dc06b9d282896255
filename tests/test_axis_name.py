"""The pmap-ready promise, kept: train_step with `axis_name`, and a model built with
`bn_axis_name`, under jax.shard_map over two (forced) CPU devices, each holding half the
batch, give the one-device step on the whole batch: the same loss and accuracy, the same
new parameters, the same BatchNorm moving statistics. Without the named-axis reductions
each device would step on its own half's gradients and statistics (checked too).

It runs in a subprocess: the device count is fixed when JAX starts.
"""
import os
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import functools
    import jax, jax.numpy as jnp, numpy as np
    from jax.sharding import Mesh, PartitionSpec as P
    sys_path = __import__("sys").path.insert(0, "tests")
    from conftest import tiny_config
    from digitjax import config as config_lib, models, optim, steps, validation

    assert jax.device_count() == 2, jax.devices()
    c = config_lib.choose_model(tiny_config(), "flowers_cnn")  # Conv -> BN -> MaxPool
    c.model.batch_norm, c.model.hidden_units, c.batch_size = True, (16,), 8
    c.optimizer.name = "sgd"
    assert validation.validate(c) == []
    tx, plateau = optim.make(c, 1), optim.plateau(c)
    one = models.build(c, 10)
    state = steps.create_train_state(one, tx, plateau, (28, 28, 1), jax.random.key(0))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 28, 28, 1), dtype=np.uint8)
    labels = rng.integers(0, 10, 8).astype(np.int32)
    key = jax.random.key(1)
    ref, ref_m = jax.jit(functools.partial(steps.train_step, model=one, tx=tx, config=c))(
        state, images, labels, key)

    mesh = Mesh(np.array(jax.devices()), ("batch",))
    def sharded(axis):
        model = models.build(c, 10, bn_axis_name=axis)
        step = functools.partial(steps.train_step, model=model, tx=tx, config=c,
                                 axis_name=axis)
        return jax.jit(jax.shard_map(step, mesh=mesh, in_specs=(P(), P("batch"), P("batch"), P()),
                                     out_specs=(P(), P()), check_vma=False))
    got, got_m = sharded("batch")(state, images, labels, key)
    close = lambda a, b: all(np.allclose(x, y, rtol=1e-5, atol=1e-6)
                             for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    assert float(got_m["loss"]) == np.float32(got_m["loss"])  # a scalar, reduced
    np.testing.assert_allclose(got_m["loss"], ref_m["loss"], rtol=1e-5)
    np.testing.assert_allclose(got_m["accuracy"], ref_m["accuracy"], rtol=1e-6)
    assert close(got.params, ref.params), "parameters"
    assert close(got.batch_stats, ref.batch_stats), "BatchNorm statistics"
    assert jax.tree.leaves(ref.batch_stats), "the model has BatchNorm"

    # Without the axis name, each device keeps its own half's numbers: not the same.
    def alone():
        step = functools.partial(steps.train_step, model=one, tx=tx, config=c)
        return jax.jit(jax.shard_map(step, mesh=mesh, in_specs=(P(), P("batch"), P("batch"), P()),
                                     out_specs=(P(), P()), check_vma=False))
    apart, _ = alone()(state, images, labels, key)
    assert not close(apart.batch_stats, ref.batch_stats)
    assert not close(apart.params, ref.params)
    print("OK")
""")


def test_named_axis_step_over_two_devices_equals_one_device():
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2",
             JAX_PLATFORMS="cpu")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  r = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, env=env, capture_output=True,
                     text=True, timeout=600)
  assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr
