"""The project's tools, apart from the product: benchmarks (`bench`), chaos runs (`chaos`) and test doubles
(`testing`, the `noop` and `chaos` backends, the `memory` storage), and the GPU check behind
`scripts/gpu_check` (`gpu_check`).

This package lives only in a source checkout: it is not listed in pyproject.toml's packages, so the runtime wheel
does not ship it and no runtime module imports it. The worker reaches the doubles by module path, lazily, when
TENKAIGEN_BACKEND=noop/chaos or TENKAIGEN_STORAGE=memory names them (worker/backends/registry.py,
worker/storage/__init__.py); scripts/ and tests/ import it from the checkout's root.
"""
