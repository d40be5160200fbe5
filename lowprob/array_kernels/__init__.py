"""Array-backend kernels shared by the numpy estimators and the WhestBench export.

Modules here import nothing but the standard library and each other, and take an
:class:`~lowprob.array_kernels.activations.ArrayBackend` (numpy or ``flopscope.numpy``):
:mod:`~lowprob.array_kernels.activations` (``Activation`` objects),
:mod:`~lowprob.array_kernels.cumulant_steps` (cumulant deduction/projection rules),
:mod:`~lowprob.array_kernels.designs` (rotated cross-polytope sampling).
:mod:`lowprob.integrations.whestbench_export` bundles their source into one file.
"""
