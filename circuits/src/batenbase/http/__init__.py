"""The HTTP face of BatenBase: a Starlette app over the `BatenBase` facade."""
