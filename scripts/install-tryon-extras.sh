#!/bin/sh
# Install optional try-on backends that are not on PyPI (used by docker/tryon.Dockerfile).
#   sh scripts/install-tryon-extras.sh fashn
# FASHN VTON v1.5 (code and weights Apache-2.0) is installed from its repository at a pinned commit. Upstream's
# pipeline runs fashn-human-parser, whose weights are NON-COMMERCIAL; the adapter's default TRYON_FASHN_PARSER=own
# never loads them (the fashn-human-parser package is still installed: upstream imports its label constants).
# TRYON_FASHN_PARSER=fashn downloads and runs them: not for commercial deployments. Override the pin with
# FASHN_VTON_COMMIT after reviewing a newer one. Weights are NOT fetched here: run
#   python /opt/fashn-vton-1.5/scripts/download_weights.py --weights-dir /models/fashn-vton-1.5
# once into the models volume (TRYON_FASHN_WEIGHTS_DIR defaults to $FITTINGROOM_MODEL_DIR/fashn-vton-1.5).
set -eu
FASHN_VTON_REPO="${FASHN_VTON_REPO:-https://github.com/fashn-AI/fashn-vton-1.5.git}"
FASHN_VTON_COMMIT="${FASHN_VTON_COMMIT:-7360e77d45d8f89e5b1f233a5073ed5fd89faaa6}"
for extra in $(echo "${1:-}" | tr ',' ' '); do
  case "$extra" in
    fashn)
      rm -rf /opt/fashn-vton-1.5
      git clone --filter=blob:none "$FASHN_VTON_REPO" /opt/fashn-vton-1.5
      git -C /opt/fashn-vton-1.5 checkout --detach "$FASHN_VTON_COMMIT"
      # fashn-vton declares torch<2.6 and onnxruntime-gpu; the project pins a newer torch in
      # constraints.txt, so install the package without its declared deps and add the rest by name
      # (the adapter runs it on the project's torch - check one inference after changing either pin).
      pip install --no-deps /opt/fashn-vton-1.5
      pip install -c constraints.txt safetensors huggingface_hub einops matplotlib "fashn-human-parser==0.1.1"
      ;;
    *)
      echo "unknown try-on extra: $extra (known: fashn)" >&2
      exit 2
      ;;
  esac
done
