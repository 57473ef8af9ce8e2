"""Policy server and robot client: inference off the control loop, locally or on another machine."""
