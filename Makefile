# The README's two commands: `make demo` (main job on a built-in sample) and `make test`.
# Both create the virtual environment on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# The CUDA extra only where an NVIDIA driver answers; everything else runs on the CPU. The CUDA version the
# driver reports picks the CuPy build: 12 gets cupy-cuda12x, 13 and later cupy-cuda13x, older ones none.
CUDA_EXTRA := $(shell v=$$(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9][0-9]*\).*/\1/p' | head -n 1); \
                if [ -z "$$v" ]; then :; elif [ "$$v" -ge 13 ]; then echo ",cuda"; elif [ "$$v" -eq 12 ]; then echo ",cuda12"; fi)
# The tests compile the CUDA sources through NVRTC with no GPU either: without a driver they take the CUDA 13
# build where its wheels exist (Linux x86-64), so one CuPy is installed whichever way.
TEST_CUDA_EXTRA := $(if $(CUDA_EXTRA),$(CUDA_EXTRA),$(shell [ "$$(uname -s)-$$(uname -m)" = Linux-x86_64 ] && echo ",cuda"))
# Models come from the team's shared folder beside the checkout when it exists, else they are
# downloaded into the user's cache (~/.cache/depthcam) with a checksum.
SHARED_MODELS := $(wildcard ../shared/models)
MODELS_ENV := $(if $(SHARED_MODELS),DEPTHCAM_MODELS=$(abspath $(SHARED_MODELS)),)

.PHONY: demo test test-system-packages ptx bench clean

# pyproject's requires-python, checked before anything is installed. An environment left by an older Python
# (a failed first try) is made again rather than reused, which would keep failing with the same message.
NEEDS_PYTHON := import sys; sys.exit(sys.version_info < (3, 11))
define make-venv
	@$(PY) -c '$(NEEDS_PYTHON)' 2>/dev/null || { \
	  $(PYTHON) -c '$(NEEDS_PYTHON)' 2>/dev/null || { \
	    echo "depthcam needs Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) -V 2>&1 || echo missing):" \
	         "run make again with PYTHON=python3.12 (or another 3.11+)"; exit 1; }; \
	  rm -rf $(VENV) && $(PYTHON) -m venv $(VENV); }
endef

# depthcam itself (with the plot extra for `bench --plot`), and for the tests also pytest and NVRTC;
# the test install is a superset, so it counts for both.
$(VENV)/.installed-run: pyproject.toml
	$(make-venv)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[plot$(CUDA_EXTRA)]"
	touch $@

$(VENV)/.installed-test: pyproject.toml
	$(make-venv)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test,plot$(TEST_CUDA_EXTRA)]"
	touch $@ $(VENV)/.installed-run

demo: $(VENV)/.installed-run
	$(MODELS_ENV) $(VENV)/bin/depthcam demo

test: $(VENV)/.installed-test test-system-packages
	$(MODELS_ENV) $(PY) -m pytest -q

# Xvfb lets the tests open the real preview window on a machine without a screen. Installed from
# Debian's packages where we are root and apt-get exists; elsewhere that one test skips and says why.
test-system-packages:
	@command -v Xvfb >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends xvfb >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends xvfb >/dev/null 2>&1; }; } \
	  && echo "installed Xvfb for the preview-window test"; } || echo "Xvfb not installed: the preview-window test will skip"

# Compile every CUDA source to PTX for Hopper (what CI's tests also do).
ptx:
	for f in kernels/*.cu; do nvcc -ptx -arch=sm_90 -o /dev/null $$f || exit 1; done

bench: $(VENV)/.installed-run
	$(MODELS_ENV) $(VENV)/bin/depthcam bench --json out/bench.json

clean:
	rm -rf $(VENV) out
