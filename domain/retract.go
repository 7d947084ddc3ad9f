package domain

func (k *work) retract(id string) error {
	return &RetractError{Decision: id, Problem: "not implemented yet"}
}
