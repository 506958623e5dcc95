"""The Split Variational Autoencoder.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738).

The decoder's last convolution has 2C+1 sigmoid channels: a map sigma and two
images x1, x2, composed as x_hat = sigma*x1 + (1-sigma)*x2. The loss is the
ordinary VAE loss on x_hat, with the reconstruction error divided by gamma, a
running estimate of the reconstruction MSE (see `training.GammaBalance`).

The networks (encoder, latent block, decoder) and the composition
`split_output` are built in `networks`; reading a model from a name or a
file is in `loader` (`SplitVAE.from_*` are thin calls into it); the batched
numpy path of `encode`/`decode` is in `inference`.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from . import checks, inference, loader, presets
from .config import SplitVAEConfig, get_preset
from .distribute import per_replica_loss, replicas_in_sync, step_logs
from .parts import components_of, map_names
from .networks import PACKAGE, build_decoder, build_encoder, build_latent, split_output
from .precision import check_device_supports, dtype_policy


def vae_loss_terms(x, x_hat, z_mean, z_log_var, gamma, beta) -> dict:
    """The VAE loss, with keras.ops only (one path for every backend).

    Per sample: 0.5 * sum((x - x_hat)^2) / gamma + beta * KL with
    KL = 0.5 * sum(z_mean^2 + exp(z_log_var) - 1 - z_log_var) (the paper's
    Section II-A, equation 4; gamma and beta as in docs/model.md, "The loss and
    the balance"); the loss is the batch mean. Also returns the batch reconstruction MSE (per pixel) and the
    batch mean KL, which the training logs show. Everything is computed in
    float32, whatever the dtype of the network's outputs (mixed precision).
    """
    x, x_hat, z_mean, z_log_var, gamma = (
        ops.cast(t, "float32") for t in (x, x_hat, z_mean, z_log_var, gamma))
    sq = ops.square(x - x_hat)
    rec = 0.5 * ops.sum(ops.reshape(sq, (ops.shape(sq)[0], -1)), axis=-1)
    kl = 0.5 * ops.sum(
        ops.square(z_mean) + ops.exp(z_log_var) - 1.0 - z_log_var, axis=-1)
    loss = ops.mean(rec / gamma + beta * kl)
    return {"loss": loss, "mse": ops.mean(sq), "kl": ops.mean(kl)}


def stacked_maps(parts: dict):
    """The K maps of a split model's output dict (keras.ops tensors), stacked
    on a last axis (N, H, W, K); for K = 2 sigma and 1 - sigma
    (`parts.maps_of` is the numpy reading)."""
    if "sigma" in parts:
        return ops.concatenate([parts["sigma"], 1.0 - parts["sigma"]], axis=-1)
    return ops.concatenate([parts[n] for n in map_names(components_of(parts))], axis=-1)


def map_entropy_per_sample(maps):
    """Sum over pixels of the entropy (nats) of the K maps (N, H, W, K) -> (N,).
    0 where one component takes the pixel, log K for an even blend; 0 log 0 = 0."""
    maps = ops.cast(maps, "float32")
    h = -ops.sum(maps * ops.log(ops.maximum(maps, 1e-12)), axis=-1)
    return ops.sum(ops.reshape(h, (ops.shape(h)[0], -1)), axis=-1)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LastValue(keras.metrics.Metric):
    """A metric that reports the value of the last batch, not an average.

    `GammaBalance` needs the MSE of each batch, while `keras.metrics.Mean`
    reports the mean since the start of the epoch.
    """

    def __init__(self, name="last_value", **kwargs):
        super().__init__(name=name, **kwargs)
        # "mean": on several replicas, the value logged is the mean of the
        # replicas' values (the global batch's, for equal shards).
        self.value = self.add_variable(shape=(), initializer="zeros", name="value",
                                       aggregation="mean")

    def update_state(self, value):
        self.value.assign(ops.cast(value, self.value.dtype))

    def result(self):
        # A copy: under TensorFlow, convert_to_tensor of a variable is the
        # variable itself, and fit() reads the epoch's logs after validation
        # has overwritten it (the history showed the validation value).
        return ops.copy(self.value)

    def reset_state(self):
        self.value.assign(0.0)


# ---------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------
@keras.saving.register_keras_serializable(package=PACKAGE)
class SplitVAE(keras.Model):
    """Split Variational Autoencoder (Asperti, Bugo, Filippini, IEEE Access 2022).

    Paper: https://arxiv.org/abs/2202.02738. Three functional sub-models, in the
    original's order: `encoder` (image -> embedding), `latent` (embedding ->
    embedding of z, z, z_mean, z_log_var) and `decoder` (embedding -> 2C+1
    channels; K maps and K images for `config.components` = K > 2, see
    docs/components.md). `model(x)` returns the reconstruction x_hat (through z_mean);
    `model(x, training=True)` returns the dict of every term, which `fit` uses.

    Args:
        config: `SplitVAEConfig`, a dict of its fields, or a preset name.
            Defaults to `SplitVAEConfig()`.
        seed: int or None, seed of the training-time latent sampling.
        **kwargs: passed to `keras.Model` (e.g. `name`).

    Example:
    ```python
    import numpy as np
    from split_vae import SplitVAE, GammaBalance
    model = SplitVAE.from_preset("digits")
    images = np.random.rand(128, 16, 16, 1).astype("float32")
    model.compile()
    model.fit(images, epochs=1, batch_size=64, callbacks=[GammaBalance()])
    parts = model.generate(4, seed=0)   # keys: sigma, x1, x2, x_hat
    ```
    """

    def __init__(self, config=None, seed=None, **kwargs):
        if config is None:
            config = SplitVAEConfig()
        elif isinstance(config, str):
            config = get_preset(config)
        elif isinstance(config, dict):
            config = SplitVAEConfig.from_dict(config)
        elif not isinstance(config, SplitVAEConfig):
            raise ValueError(
                "config must be a SplitVAEConfig, a dict or a preset name, "
                f"received {type(config).__name__}")
        kwargs.setdefault("name", "split_vae")
        super().__init__(**kwargs)
        self.config = config
        self.seed = seed

        # === Sub-models ===
        # Built under config.precision's dtype policy (the global policy is
        # restored afterwards); on several TensorFlow replicas, BatchNorm
        # normalises over the global batch, as on one device.
        sync_bn = replicas_in_sync() > 1
        with dtype_policy(config.precision):
            self.encoder = build_encoder(config, sync_bn=sync_bn)
            self.latent = build_latent(config, seed=seed)
            self.decoder = build_decoder(config, sync_bn=sync_bn)

        # === Training state (saved with the weights, not in count_params) ===
        # gamma divides the reconstruction error; mse_running is the running
        # MSE estimate from which GammaBalance lowers it. Always float32.
        self.gamma = self.add_weight(
            shape=(), initializer="ones", trainable=False, name="gamma", dtype="float32")
        self.mse_running = self.add_weight(
            shape=(), initializer="ones", trainable=False, name="mse_running",
            dtype="float32")

        # === Loss trackers ===
        self.mse_tracker = keras.metrics.Mean(name="mse")
        self.kl_tracker = keras.metrics.Mean(name="kl")
        self.batch_mse_tracker = LastValue(name="batch_mse")
        self.gamma_tracker = LastValue(name="gamma")
        self.kl_weight_tracker = LastValue(name="kl_weight")
        # The maps' mean entropy per pixel (nats), logged for every model but
        # the paper's (whose logs stay what they were).
        self.entropy_tracker = (keras.metrics.Mean(name="map_entropy")
                                if config.split and not (config.paper_layout
                                                         and config.map_entropy == 0)
                                else None)
        self.built = True

    # --- shapes -------------------------------------------------------
    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.config.image_shape)

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def split(self) -> bool:
        return self.config.split

    @property
    def components(self) -> int:
        """K, the images composed: 2 for the paper's model, 0 for a vanilla one."""
        return self.config.parts

    # --- forward ------------------------------------------------------
    def _forward(self, x, training=False) -> dict:
        emb = self.encoder(x, training=training)
        emb_hat, z, z_mean, z_log_var = self.latent(emb, training=training)
        out = self._decode_embedding(emb_hat, training=training)
        out.update(z=z, z_mean=z_mean, z_log_var=z_log_var)
        return out

    def _decode_embedding(self, emb, training=False) -> dict:
        decoded = self.decoder(emb, training=training)
        return split_output(decoded, self.config.channels, self.config.split)

    def call(self, inputs, training=None):
        out = self._forward(inputs, training=bool(training))
        return out if training else out["x_hat"]

    def compute_output_spec(self, inputs, training=None):
        # Keras traces outputs symbolically with training unset: x_hat.
        shape = (inputs.shape[0],) + self.image_shape
        return keras.KerasTensor(shape, dtype=self.decoder.output.dtype)

    # --- loss and metrics (every backend) ------------------------------
    # The loss and the trackers are computed in compute_loss, the one place
    # where every backend gives access to the model's variables: under JAX
    # the trainer runs compute_loss inside a stateless scope that maps every
    # variable (gamma included) to the step's state, while compute_metrics
    # only sees the metric variables. So gamma is read where the loss is
    # computed, and the loss of batch t uses the gamma that GammaBalance set
    # after batch t-1 on every backend.
    def _terms(self, x, y_pred):
        # fit() passes the dict of call(training=True); evaluate() and
        # validation pass x_hat alone (Keras calls the model with
        # training=False there, as predict does), so the latent statistics
        # are recomputed here, without sampling: evaluation costs two extra
        # forward passes, training none.
        if not isinstance(y_pred, dict):
            y_pred = self._forward(x, training=False)
        gamma = ops.convert_to_tensor(self.gamma)
        terms = vae_loss_terms(x, y_pred["x_hat"], y_pred["z_mean"],
                               y_pred["z_log_var"], gamma, self.config.beta)
        if self.entropy_tracker is not None:
            # The prior on the maps (config.map_entropy; 0 adds nothing).
            h = map_entropy_per_sample(stacked_maps(y_pred))
            pixels = math.prod(self.image_shape[:2])
            terms["map_entropy"] = ops.mean(h) / pixels
            if self.config.map_entropy:
                terms["loss"] = terms["loss"] + self.config.map_entropy * ops.mean(h)
        return terms, gamma

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None,
                     training=True):
        terms, gamma = self._terms(x, y_pred)
        mse, kl = ops.stop_gradient(terms["mse"]), ops.stop_gradient(terms["kl"])
        self.mse_tracker.update_state(mse)
        self.kl_tracker.update_state(kl)
        self.batch_mse_tracker.update_state(mse)
        self.gamma_tracker.update_state(gamma)
        self.kl_weight_tracker.update_state(gamma * self.config.beta)
        if self.entropy_tracker is not None:
            self.entropy_tracker.update_state(ops.stop_gradient(terms["map_entropy"]))
        loss = terms["loss"]
        if self.losses:
            loss = loss + ops.sum(self.losses)
        return per_replica_loss(loss)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        # The trackers were updated with the loss (see above); on several
        # workers the logs take the shape Keras's reduction needs (step_logs).
        return step_logs(self.get_metrics_result())

    def compile(self, optimizer=None, **kwargs):
        """`keras.Model.compile` with Adam at config.learning_rate by default."""
        if optimizer is None:
            optimizer = keras.optimizers.Adam(learning_rate=self.config.learning_rate)
        if self.config.precision == "mixed_float16" and not isinstance(
                optimizer, keras.optimizers.LossScaleOptimizer):
            # float16 gradients underflow without loss scaling (dynamic scale).
            optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        if kwargs.get("loss") is not None:
            raise ValueError(
                "SplitVAE computes its own loss (the VAE loss on x_hat); do not pass loss= "
                f"to compile, received {kwargs['loss']!r}")
        super().compile(optimizer=optimizer, **kwargs)

    def compile_from_config(self, config):
        # Keras skips compile_from_config for models that override compile();
        # ours only adds a default, so restoring the saved arguments is safe.
        config = keras.saving.deserialize_keras_object(config)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit` on images alone, checked before training starts.

        `x` is a numpy array of images (N, H, W, C) or a `tf.data.Dataset` of
        image batches. uint8 arrays are scaled to [0, 1]; wrong shapes, NaN or
        inf, and values outside [0, 1] raise ValueError, as does
        config.precision="mixed_float16" on a CPU without float16 arithmetic.
        """
        check_device_supports(self.config.precision)
        if x is None:
            raise ValueError("fit() needs images: x=None received")
        if hasattr(x, "element_spec"):  # a tf.data.Dataset
            x = checks.dataset(x, self.image_shape)
            kwargs.setdefault("shuffle", False)  # a dataset shuffles itself
        elif hasattr(x, "__array__"):  # numpy arrays and array-likes
            x = checks.images(x, image_shape=self.image_shape, announce_uint8=True)
        if y is not None:
            raise ValueError("a VAE trains on images alone: pass fit(images), not fit(x, y)")
        if kwargs.get("validation_data") is not None:
            v = kwargs["validation_data"]
            if isinstance(v, np.ndarray):
                kwargs["validation_data"] = checks.images(
                    v, "validation images", image_shape=self.image_shape, announce_uint8=True)
        return super().fit(x, None, *args, **kwargs)

    # --- public API ---------------------------------------------------
    def encode(self, x, batch_size: int = 256, progress: bool = False,
               desc: str = "encode"):
        """(z_mean, z_log_var) of images, deterministic (inference mode).

        Numpy in, numpy out (in batches of batch_size, with a progress bar if
        progress=True); a backend tensor in, tensors out.
        """
        if ops.is_tensor(x):
            _, _, z_mean, z_log_var = self.latent(self.encoder(x, training=False))
            return z_mean, z_log_var
        x = checks.images(x, image_shape=self.image_shape)
        return inference.encode(self, x, batch_size, progress, desc)

    def embed_latent(self, z, training=False):
        """The Dense that maps latent vectors back to embeddings."""
        return self.latent.get_layer("to_embedding")(z, training=training)

    def decode(self, z, batch_size: int = 256, progress: bool = False,
               desc: str = "decode") -> dict:
        """Latent vectors -> dict of sigma, x1, x2, x_hat (x_hat alone if vanilla;
        sigma1..sigmaK, x1..xK, x_hat for K > 2 components: `split_vae.parts`).

        Numpy in, numpy out (batched, optional progress bar); tensors in,
        tensors out.
        """
        if ops.is_tensor(z):
            return self._decode_embedding(self.embed_latent(z))
        z = np.asarray(z, dtype="float32")
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(
                f"decode expects latent vectors of shape (N, {self.latent_dim}), "
                f"received {z.shape}")
        decoded = inference.decode(self, z, batch_size, progress, desc)
        return split_output(decoded, self.config.channels, self.config.split)

    def reconstruct(self, x, batch_size: int = 256) -> dict:
        """Decode z_mean of images: dict of sigma, x1, x2, x_hat."""
        z_mean, _ = self.encode(x, batch_size=batch_size)
        return self.decode(z_mean, batch_size=batch_size)

    def generate(self, n: int, seed=None, batch_size: int = 256, progress: bool = False,
                 desc: str = "generate") -> dict:
        """n samples from the prior N(0, I): dict of sigma, x1, x2, x_hat, z (the
        maps and parts of K components for K > 2, as `decode`).

        The paper's GEN column: z drawn with numpy's `default_rng(seed)`
        (the same seed, the same z on every backend), decoded in batches of
        batch_size, with a progress bar if progress=True.
        """
        n = checks.integer(n, "n", minimum=0)
        z = np.random.default_rng(seed).standard_normal(
            (int(n), self.latent_dim)).astype("float32")
        out = self.decode(z, batch_size=batch_size, progress=progress, desc=desc)
        out["z"] = z
        return out

    def estimate_gamma(self, images, batch_size: int = 256) -> float:
        """Set gamma (and the running MSE) to the reconstruction MSE of images.

        What the original does when training resumes from weights without a
        saved gamma (it uses 10,000 training images).
        """
        images = checks.images(images, image_shape=self.image_shape, announce_uint8=True)
        x_hat = self.reconstruct(images, batch_size=batch_size)["x_hat"]
        mse = float(np.mean(np.square(images - x_hat)))
        self.gamma.assign(mse)
        self.mse_running.assign(mse)
        return mse

    def count_params(self) -> int:
        """Weights of the network (BatchNorm moving statistics included).

        gamma, the running MSE and the sampling seed state are training
        state, not parameters: left out, so the count equals the original's.
        """
        return int(sum(
            math.prod(w.shape) for sub in (self.encoder, self.latent, self.decoder)
            for w in sub.weights))

    # --- construction and config --------------------------------------
    @classmethod
    def from_preset(cls, name, cache_dir=None, **kwargs) -> "SplitVAE":
        """A model from a built-in preset name (untrained) or a saved model.

        A built-in name wins over a directory of the same name in the working
        directory; write "./mnist" to mean the directory. Whatever else
        `from_pretrained` reads (a preset directory, a `.keras` or legacy
        file, published weights) is read too. `kwargs` go to the constructor.
        """
        return loader.from_preset(cls, name, cache_dir=cache_dir, **kwargs)[0]

    @classmethod
    def from_pretrained(cls, name_or_path, cache_dir=None, **kwargs) -> "SplitVAE":
        """A trained model: published weights by registry name, or a saved model.

        Args:
            name_or_path: a name of `presets.REGISTRY` (downloaded once into
                cache_dir), a preset directory, a `.keras` file, or a Keras 2
                `.hdf5` checkpoint of the original code, or "digits": a
                trained digits model shipped in the package (offline; a
                directory named "digits" wins). Any other built-in preset
                name, which has no weights, raises ValueError.
            cache_dir: the folder downloads go in (default
                `paths.cache_dir("weights")`, under $SPLIT_VAE_CACHE_DIR).
            **kwargs: passed to the constructor (e.g. `seed`).

        For a registry entry whose dataset is one of the paper's presets, the
        training fields (beta, learning rate, epochs, GMM components) are the
        preset's; the architecture is the registry's config when known,
        otherwise inferred from the file. gamma starts at 1: call
        `model.estimate_gamma(images)` before training further.
        """
        return loader.from_pretrained(cls, name_or_path, cache_dir=cache_dir, **kwargs)[0]

    @classmethod
    def from_legacy_h5(cls, path, config=None, **kwargs) -> "SplitVAE":
        """A model with the weights of a Keras 2 checkpoint of the original code.

        Args:
            path: str or PathLike, an `.hdf5`/`.h5` file written by the
                original code's `vae.save_weights` (Keras 2), or by `vae.save`.
            config: None (default) to infer every architecture
                hyperparameter from the file's shapes; a `SplitVAEConfig` or
                a preset name, which the file must match; or a dict of some
                fields, taken as given, the others inferred from the file
                (architecture) or left at their defaults.
            **kwargs: passed to the constructor (e.g. `seed`).

        Returns:
            A model whose `encode` and `decode` compute what the original
            network computes in inference mode. gamma is 1 (the file has
            none): call `model.estimate_gamma(images)` before training further.

        Raises:
            FileNotFoundError: no such file.
            ValueError: not a Keras 2 checkpoint of the original Split VAE, or
                (with `config`) the first weight whose shape differs, with
                both shapes.

        Example:
        ```python
        from split_vae import SplitVAE
        model = SplitVAE.from_legacy_h5("split_64_4SB_lat150_base128_512_k3.hdf5")
        print(model.config)                    # inferred from the file
        z_mean, z_log_var = model.encode(images)
        ```
        """
        return loader.from_legacy_h5(cls, path, config=config, **kwargs)

    def save_to_preset(self, preset_dir, dataset=None, source=None) -> str:
        """Write config.json, model.weights.h5 and metadata.json to preset_dir,
        which `from_preset` loads; see `presets.save_to_preset`."""
        return presets.save_to_preset(self, preset_dir, dataset=dataset, source=source)

    def get_config(self):
        return {"config": self.config.to_dict(), "seed": self.seed, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        cfg = config.pop("config")
        config.pop("trainable", None)
        config.pop("dtype", None)
        return cls(SplitVAEConfig.from_dict(cfg), **config)


# The public name of the legacy reader since the first release (docs/weights.md,
# weights/README.md): the same classmethod, bound to SplitVAE.
load_legacy_h5 = SplitVAE.from_legacy_h5
