"""The Store and the parts it is made of: lifecycle, writer, index and reads."""
