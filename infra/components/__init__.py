"""One ComponentResource per building block of the platform (type tokens `mlops:<area>:<Type>`)."""
