"""Model artifacts: the model store resource (local files or an S3-compatible object store);
import from :mod:`resources.models.store`."""
