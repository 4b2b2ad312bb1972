"""Fine-tuning jobs (seed 001's `/ml-api/fine-tuning-jobs/`): uploaded files, job records,
and the local backend that really trains a tiny model in a subprocess."""
