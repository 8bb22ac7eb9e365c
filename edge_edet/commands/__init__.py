"""CLI sub-commands, one module each; see edge_edet.cli."""
