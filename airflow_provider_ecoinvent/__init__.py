"""Apache Airflow provider for the ecoinvent API.

This module is imported whenever Airflow discovers providers and whenever a DAG file imports the
package, so it stays free of I/O and heavy imports: the hook, operators, sensors and triggers live in
their own sub-packages and are imported only by the code that uses them.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
