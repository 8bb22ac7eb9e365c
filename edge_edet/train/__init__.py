"""Fine-tuning on COCO-format data: dataset, augmentation, anchor assignment, loss, EMA, trainer.

Imports torch (through `trainer`); the runtime never imports this package.
"""
