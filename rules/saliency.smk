# saliency stage (being written)
