"""Built-in plugins, one package per method; each registers under the ``framework.plugins`` entry-point group."""
