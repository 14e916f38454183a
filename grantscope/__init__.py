"""grantscope: diagnostics for Xen grant tables, event channels and XenStore."""

__version__ = "0.1.0"
