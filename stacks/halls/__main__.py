"""kasbah-halls: plan the environment and create the data halls of the stack's hall group."""

from kasbah.components.programs import halls_program

halls_program()
