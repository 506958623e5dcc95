"""Fréchet Inception Distance, as the Split VAE paper measures it, in three parts.

Asperti, Bugo, Filippini, "Enhancing Variational Generation Through
Self-Decomposition", IEEE Access 10, 2022 (https://arxiv.org/abs/2202.02738),
after Heusel et al., NeurIPS 2017 (https://arxiv.org/abs/1706.08500):

- `frechet`: the distance between Gaussians fitted to features (numpy and
  scipy only);
- `feature_extractor`, `extractors`, `fd_fmnist`, `fid_inception`: the
  networks that map images to features (Keras InceptionV3, the paper's;
  pytorch-fid's Inception, the literature's, read by `pth` without PyTorch;
  any .keras model; our Fashion-MNIST classifier);
- `kid`: the Kernel Inception Distance, an unbiased MMD^2 (numpy only);
- `stats_cache`: the reference statistics of image sets, cached on disk.

This module is the package's face: `from split_vae.metrics import
frechet_distance, FeatureExtractor, reference_statistics, get_extractor`.
Each name is imported from its module on first use (PEP 562), so the
Fréchet distance can be used without importing Keras. The modules import in
one direction: frechet <- feature_extractor <- fd_fmnist, fid_inception <-
extractors, pth <- fid_inception, and frechet, feature_extractor <-
stats_cache; none imports this face.
"""

from .. import lazy as _lazy

# The public names, and the module each lives in.
_EXPORTS = {
    "feature_statistics": "frechet", "fid_from_features": "frechet",
    "frechet_distance": "frechet", "frechet_distance_sqrtm": "frechet",
    "trace_sqrt_product": "frechet",
    "FID_NOTE": "feature_extractor", "STATS_FORMAT": "feature_extractor",
    "FeatureExtractor": "feature_extractor",
    "INCEPTION_WEIGHTS_FILE": "extractors", "get_extractor": "extractors",
    "auto_extractor": "extractors", "cached_inception_weights": "extractors",
    "offline_fallback": "extractors",
    "inception_extractor": "extractors", "random_conv_extractor": "extractors",
    "FDFMNISTExtractor": "fd_fmnist", "fd_fmnist_extractor": "fd_fmnist",
    "FIDInceptionExtractor": "fid_inception", "fid_inception_extractor": "fid_inception",
    "read_state_dict": "pth",
    "kernel_inception_distance": "kid", "kid_subset_size": "kid",
    "KID_SUBSETS": "kid", "KID_SUBSET_SIZE": "kid",
    "images_digest": "stats_cache", "reference_statistics": "stats_cache",
    "reference_features": "stats_cache",
    "statistics_key": "stats_cache",
}
_SUBMODULES = ("extractors", "fd_fmnist", "feature_extractor", "fid_inception", "frechet",
               "kid", "pth", "stats_cache")

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = _lazy.attach(__name__, _EXPORTS, _SUBMODULES)
