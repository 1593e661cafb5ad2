"""Problems shipped with ambs: benchmark functions and learning tasks."""
