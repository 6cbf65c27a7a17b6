"""Write-back: owned fields in each CRM (fields.py), the CRM adapters (crm.py), and plans,
journal, apply and rollback (plan.py)."""
