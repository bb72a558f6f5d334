# criteria stage (being written)
