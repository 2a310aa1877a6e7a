"""mesos-gpu: a long-running Apache Mesos framework for GPU TensorFlow jobs.

Rings (see DESIGN.md section 3): pure modules (model, errors, resources, placement, state, tf.cluster)
use the standard library only; adapters wrap one third-party I/O library each; composition wires them.
"""

__version__ = "0.1.0"
