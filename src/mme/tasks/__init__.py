"""Training tasks: each builds its model and defines one step's loss; ``Trainer.fit`` runs any of them."""
