"""Binary byte units, for sizes in code and on the command line."""

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
