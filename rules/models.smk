# models stage (being written)
