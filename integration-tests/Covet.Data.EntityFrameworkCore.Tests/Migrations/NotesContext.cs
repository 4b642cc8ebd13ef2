using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace Covet.Data.EntityFrameworkCore.Tests.Migrations;

public class Note
{
    public int Id { get; set; }
    public string Title { get; set; } = "";
    public string? Body { get; set; }
}

public class Label
{
    public int Id { get; set; }
    public int NoteId { get; set; }
    public string Name { get; set; } = "";
}

/// <summary>The context <c>Migrate</c> runs on: two hand-written, provider-neutral migrations and their snapshot.</summary>
public class NotesContext(DbContextOptions<NotesContext> options) : DbContext(options)
{
    public DbSet<Note> Notes => Set<Note>();
    public DbSet<Label> Labels => Set<Label>();

    protected override void OnModelCreating(ModelBuilder modelBuilder) => NotesModel.Build(modelBuilder);
}

internal static class NotesModel
{
    // Shared by the context and the snapshot, so the model has no pending changes against the last migration. Every
    // property is configured explicitly: a snapshot's model builder has no conventions to discover them.
    public static void Build(ModelBuilder modelBuilder)
    {
        modelBuilder.Entity<Note>(b =>
        {
            b.ToTable("Notes");
            b.HasKey(n => n.Id);
            b.Property(n => n.Id).ValueGeneratedNever();
            b.Property(n => n.Title).HasMaxLength(200).IsRequired();
            b.Property(n => n.Body);
            b.HasIndex(n => n.Title).HasDatabaseName("IX_Notes_Title");
        });
        modelBuilder.Entity<Label>(b =>
        {
            b.ToTable("Labels");
            b.HasKey(l => l.Id);
            b.Property(l => l.Id).ValueGeneratedNever();
            b.Property(l => l.NoteId); // explicit: a snapshot's model builder runs without property discovery
            b.Property(l => l.Name).HasMaxLength(50).IsRequired();
        });
    }
}

[DbContext(typeof(NotesContext))]
[Migration("20260101000000_CreateNotes")]
public sealed class CreateNotes : Migration
{
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateTable(
            name: "Notes",
            columns: table => new
            {
                Id = table.Column<int>(nullable: false),
                Title = table.Column<string>(maxLength: 200, nullable: false),
                Body = table.Column<string>(nullable: true),
            },
            constraints: table => table.PrimaryKey("PK_Notes", x => x.Id));
    }

    protected override void Down(MigrationBuilder migrationBuilder) => migrationBuilder.DropTable(name: "Notes");
}

[DbContext(typeof(NotesContext))]
[Migration("20260102000000_AddLabels")]
public sealed class AddLabels : Migration
{
    // Only operations every provider can reverse without a target model (SQLite cannot drop a column that way).
    protected override void Up(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.CreateIndex(name: "IX_Notes_Title", table: "Notes", column: "Title");
        migrationBuilder.CreateTable(
            name: "Labels",
            columns: table => new
            {
                Id = table.Column<int>(nullable: false),
                NoteId = table.Column<int>(nullable: false),
                Name = table.Column<string>(maxLength: 50, nullable: false),
            },
            constraints: table => table.PrimaryKey("PK_Labels", x => x.Id));
    }

    protected override void Down(MigrationBuilder migrationBuilder)
    {
        migrationBuilder.DropTable(name: "Labels");
        migrationBuilder.DropIndex(name: "IX_Notes_Title", table: "Notes");
    }
}

[DbContext(typeof(NotesContext))]
public sealed class NotesContextModelSnapshot : ModelSnapshot
{
    protected override void BuildModel(ModelBuilder modelBuilder)
    {
        modelBuilder.HasAnnotation("ProductVersion", "10.0.15");
        NotesModel.Build(modelBuilder);
    }
}
