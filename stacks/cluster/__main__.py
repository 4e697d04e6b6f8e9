"""kasbah-cluster: plan the environment, create the stack's cluster and export what others need."""

from kasbah.components.programs import cluster_program

cluster_program()
