"""Graph patterns over the money graph and the party-identifier graph, and case-graph measures."""
