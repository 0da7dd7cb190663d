"""Demonstrations for fine-tuning: scripted experts and the one HDF5 layout every demo is stored in."""
