"""The harness the tests and the benchmarks share: JupyterLab and Notebook 7 in headless
Chromium, a real Jupyter kernel, and real OpenHands servers with a scripted fake LLM."""
