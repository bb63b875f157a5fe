# The one source of the version: boot line, discovery replies, host tools.
VERSION = "0.1.0"
