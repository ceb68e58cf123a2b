-- Undoes 20250115000000_add_customer_beneficiaries.

-- DropForeignKey
ALTER TABLE "Beneficiary" DROP CONSTRAINT "Beneficiary_customerId_fkey";

-- DropTable
DROP TABLE "Beneficiary";
